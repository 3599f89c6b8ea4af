"""The console: first page interactive with 10k memories, and a screenshot of every page.

`alphaavatar up` (owner and user tokens set) on a fresh data root; 10,000 memories for one user
added over MCP (memory_add_batch), plus a person with a profile, a corpus document and reads by
another MCP host; a fake OpenAI-compatible LLM (tests/fakes) for the chat. Then in headless Chromium (signed in as the owner, showing Sam): page reloads
timed from navigation start to the Memories list rendered with its total (the first screen a
person can use), p50/p95 over `--runs`; and a PNG of each page in bench/out/console/ at desktop
width and at a phone's 390 px (`<page>-phone.png`; the Avatar page after one chat turn, with "why it
said that" open).

Usage: .venv/bin/python bench/console.py [--memories 10000] [--runs 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.figures import save  # noqa: E402
from bench.memory_latency import pct  # noqa: E402

OUT = ROOT / "bench" / "out" / "console"
OWNER = "bench-owner-token"
PAGES = ("memories", "people", "knowledge", "activity", "status", "avatar")
TOPICS = ["tea", "cycling", "Lisbon", "jazz", "the garden", "chess", "a sister in Porto", "sourdough", "rain", "work"]

# Set once the Memories list shows its total: the first screen is usable from then on.
READY = """
new MutationObserver((_, obs) => {
  const h = document.getElementById('list-h');
  if (h && /memories$/.test(h.textContent) && document.querySelector('#memories li')) {
    window.__ready = performance.now(); obs.disconnect();
  }
}).observe(document, {subtree: true, childList: true, characterData: true});"""


async def seed(base: str, n: int) -> str:
    """Sam (a person with a profile) and his `n` memories, a guest, a document, another host's read."""
    from tests.support import ok
    from tests.test_console import mcp

    async with mcp(base, "persona", OWNER) as s:
        sam = await ok(s, "user_create", {"name": "Sam"})
        await ok(s, "user_create", {"name": "Guest 1", "provisional": True})
        await ok(s, "profile_update", {"user_id": sam["user_id"], "patches": [
            {"op": "set", "field": "identity.location", "value": "Lisbon"},
            {"op": "add", "field": "preferences", "value": "green tea", "confidence": 0.8},
            {"op": "set", "field": "identity.occupation", "value": "architect"}]})
    async with mcp(base, "memory", OWNER) as s:
        for start in range(0, n, 1000):
            items = [{"content": f"Memory {i}: talked about {TOPICS[i % len(TOPICS)]} on day {i // 10}",
                      "user_id": sam["user_id"], "scope": "session" if i % 7 == 0 else "user",
                      "session_id": f"s{i // 50}", "infer": False} for i in range(start, min(n, start + 1000))]
            await ok(s, "memory_add_batch", {"items": items})
    async with mcp(base, "research", OWNER) as s:
        await ok(s, "corpus_add", {"text": "Okapis live in the Ituri rainforest and are related to giraffes.",
                                   "title": "Okapi notes"})
    async with mcp(base, "memory", OWNER, client="claude-desktop") as s:
        await ok(s, "memory_search", {"query": "tea", "user_id": sam["user_id"]})
    return str(sam["user_id"])


def shoot(driver: Any, name: str, suffix: str) -> None:
    """A PNG of one page once its data is drawn (People: the subject's profile)."""
    from tests.test_console import by, idle, page, wait

    page(driver, name)
    idle(driver)
    if name == "people":
        wait(driver, lambda: by(driver, "table.profile"), what="the profile")
    time.sleep(0.3)
    driver.save_screenshot(str(OUT / f"{name}{suffix}.png"))


def run(n: int, runs: int) -> dict[str, Any]:
    from tests.fakes.openai_server import FakeOpenAI
    from tests.support import http_server, server_env
    from tests.test_console import browser, by, llm_reply, page, show, sign_in, wait

    with tempfile.TemporaryDirectory() as home, FakeOpenAI(llm_reply) as llm:
        env = server_env(Path(home), ALPHAAVATAR_TOKEN=OWNER, ALPHAAVATAR_LLM_MODEL="fake-llm",
                         OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="fake-key")
        with http_server(["up"], env, timeout=240) as base:
            started = time.perf_counter()
            sam = asyncio.run(seed(base, n))
            seeded = time.perf_counter() - started
            OUT.mkdir(parents=True, exist_ok=True)
            with browser() as driver:
                driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": READY})
                driver.get(f"{base}/")
                wait(driver, lambda: by(driver, "#token"), what="sign-in")
                driver.save_screenshot(str(OUT / "signin.png"))
                sign_in(driver, base, OWNER)
                show(driver, sam)
                times = []
                for _ in range(runs):
                    driver.refresh()
                    times.append(wait(driver, lambda: driver.execute_script("return window.__ready"), what="the list"))
                total = by(driver, "#list-h").text
                for name in PAGES:
                    shoot(driver, name, "")
                page(driver, "avatar")
                by(driver, "#chat-text").send_keys("What do I like to drink?")
                by(driver, "#chat-send").click()
                wait(driver, lambda: by(driver, ".why summary"), within=120, what="the whole reply").click()
                time.sleep(0.3)
                driver.save_screenshot(str(OUT / "avatar.png"))
                driver.set_window_size(390, 844)  # a phone's width
                for name in PAGES:
                    shoot(driver, name, "-phone")
    return {"memories": n, "seed_s": round(seeded, 1), "runs": runs, "shown": total,
            "interactive_ms_p50": round(pct(times, 0.5), 1), "interactive_ms_p95": round(pct(times, 0.95), 1),
            "interactive_ms_max": round(max(times), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memories", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.memories, args.runs)
    print(f"| memories | list shows | first page interactive p50 | p95 | max | reloads |\n|---|---|---|---|---|---|\n"
          f"| {r['memories']:,} | {r['shown']} | {r['interactive_ms_p50']} ms | {r['interactive_ms_p95']} ms "
          f"| {r['interactive_ms_max']} ms | {r['runs']} |")
    print(f"(seeding took {r['seed_s']} s; screenshots in {OUT.relative_to(ROOT)}/)")
    save(r, args.json)


if __name__ == "__main__":
    main()
