"""The console against `alphaavatar up`: its HTTP guards, then the pages in a real browser
(Debian's headless Chromium, selenium).

Each change made through the pages is confirmed through an MCP client of our own; a user token
sees only its user (another user's secrets never show in a page or in any response the page
fetched); a voice enrolled from Chromium's fake microphone and a face from its fake camera are then
identified over MCP; chat replies stream in, and the owner watches the character speak them.
The helpers here are shared with bench/console.py.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from mcp import ClientSession
from mcp.types import Implementation

from tests.datasets import FACES, digits_of, file_b64, needs_faces, needs_fsdd, wav_b64
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support import call, http_server, ok, server_env
from tests.test_character_browser import chromium, needs_chromium
from tests.test_research_corpus import tiny_pdf

OWNER, ALICE, BOB, CAROL, DAN, EVE = ("owner-token-5f1c", "alice-token-93ad", "bob-token-27be", "carol-token-c0d4",
                                      "dan-token-41e9", "eve-token-6a2f")
USER_TOKENS = {ALICE: "alice", BOB: "bob", CAROL: "carol", DAN: "dan", EVE: "eve"}
PAGES = ("memories", "people", "knowledge", "activity", "status", "avatar")
PHONE = (390, 844)
BOB_SECRETS = ("BOB-SECRET-MEMORY-4417", "BOB-SECRET-PROFILE-8830")
CHAT_REPLY = "You drink green tea, as far as I remember."

# Every text the chat's last reply showed, in order (the page's own updates, seen by a MutationObserver).
WATCH_REPLY = """
window.__replies = [];
new MutationObserver(() => {
  const shown = [...document.querySelectorAll('#chat .reply-text')].pop();
  const last = window.__replies[window.__replies.length - 1];
  if (shown && shown.textContent !== last) window.__replies.push(shown.textContent);
}).observe(document.getElementById('chat'), {subtree: true, childList: true, characterData: true});"""

# Every fetch() the page makes keeps its response text, so a test can read what reached the browser.
RECORD_FETCH = """
window.__responses = [];
const realFetch = window.fetch;
window.fetch = async (...args) => {
  const r = await realFetch(...args);
  r.clone().text().then((t) => window.__responses.push(t));
  return r;
};"""

def llm_reply(body: dict[str, Any]) -> Reply:
    """The fake LLM: the agent's chat turns get a line; the memory server's extraction, empty JSON."""
    system = str(body.get("messages", [{}])[0].get("content", ""))
    if system.startswith("You are Alpha"):
        return Reply(content=CHAT_REPLY, gap=0.15)  # several pieces, far enough apart to be read one by one
    return Reply(content=json.dumps({"memory": []} if "long-term memory" in system else {"facts": []}))


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(llm_reply) as fake:
        yield fake


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, llm: FakeOpenAI) -> Iterator[str]:
    home = tmp_path_factory.mktemp("console")
    env = server_env(home, ALPHAAVATAR_TOKEN=OWNER, ALPHAAVATAR_USER_TOKENS=json.dumps(USER_TOKENS),
                     ALPHAAVATAR_LLM_MODEL="fake", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="fake-key")
    with http_server(["up"], env, timeout=240) as base:
        yield base


@contextlib.asynccontextmanager
async def mcp(base: str, server: str, token: str, client: str = "console-test", headers: dict[str, str] | None = None) -> Any:
    """An MCP client of our own (named `client` in initialize, sending `headers` too), to confirm what
    the pages did; `server` "" for a server served alone."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}", **(headers or {})}, timeout=120) as http, \
            streamable_http_client(f"{base}/{server}/mcp" if server else f"{base}/mcp", http_client=http) as streams, \
            ClientSession(streams[0], streams[1], client_info=Implementation(name=client, version="1")) as s:
        await s.initialize()
        yield s


@contextlib.contextmanager
def browser(*flags: str) -> Iterator[Any]:
    with chromium(*flags) as driver:
        driver.set_window_size(1200, 900)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_FETCH})
        yield driver


def wait(driver: Any, check: Callable[[], Any], within: float = 60.0, what: str = "") -> Any:
    deadline = time.time() + within
    while True:
        with contextlib.suppress(Exception):
            got = check()
            if got:
                return got
        if time.time() > deadline:
            notice = driver and driver.execute_script("return [...document.querySelectorAll('.notice')].map(n => n.textContent)")
            raise TimeoutError(f"the page never showed {what}; notices: {notice}")
        time.sleep(0.05)


def by(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def text(driver: Any) -> str:
    return str(driver.execute_script("return document.body.innerText"))


def sign_in(driver: Any, base: str, token: str) -> None:
    driver.get(f"{base}/")
    wait(driver, lambda: by(driver, "#token"), what="the sign-in form")
    by(driver, "#token").send_keys(token)
    by(driver, "#signin").click()
    wait(driver, lambda: by(driver, "#signout"), what="the signed-in console")


def page(driver: Any, name: str) -> None:
    by(driver, f"#nav-{name}").click()
    wait(driver, lambda: by(driver, f"main[data-page='{name}']"), what=f"the {name} page")


def idle(driver: Any) -> None:
    """Wait until no action is running ('Working…')."""
    wait(driver, lambda: "Working…" not in text(driver), what="the end of the action")


def responses(driver: Any) -> str:
    return "\n".join(driver.execute_script("return window.__responses"))


def choose(select: Any, value: str) -> None:
    from selenium.webdriver.support.select import Select

    Select(select).select_by_value(value)


def script_errors(driver: Any) -> list[str]:
    """What the page's scripts logged as errors (uncaught exceptions included) since the last call; not
    the network's (the first visit asks /api/session without a token, and a 401 is the answer)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]


def sideways(driver: Any) -> int:
    """How far the page scrolls sideways, in CSS pixels (0: it fits the window's width)."""
    return int(driver.execute_script("return document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def past_the_edge(driver: Any) -> list[str]:
    """The innermost elements reaching past the window's right edge (what makes a page scroll sideways)."""
    return list(driver.execute_script("""
        const w = document.documentElement.clientWidth;
        return [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > w + 0.5
            && ![...e.children].some((c) => c.getBoundingClientRect().right > w + 0.5))
          .slice(0, 3).map((e) => { const path = []; for (let a = e; a && a !== document.body; a = a.parentElement)
            path.push(`${a.tagName.toLowerCase()}${a.id ? '#' + a.id : ''}${a.className ? '.' + a.className : ''}:${Math.round(a.getBoundingClientRect().right)}`);
            return path.join(' < '); });"""))


def show(driver: Any, user: str) -> None:
    """As the owner, show `user`'s data: type the id over the subject field's text and press Enter, as a
    person does, then wait for the page to take it. Not `clear()`: WebDriver's clear empties the field
    and fires `change` (no `input`), which commits an empty subject, that is "default"; the field rightly
    shows "default" again when next drawn (its user list arriving), and the keys were appended to it."""
    from selenium.webdriver.common.keys import Keys

    by(driver, "#subject").send_keys(Keys.CONTROL, "a", Keys.NULL, user, Keys.ENTER)
    wait(driver, lambda: driver.execute_script("return sessionStorage.getItem('alphaavatar.subject')") == user,
         what=f"{user} chosen")


def accept(driver: Any) -> None:
    wait(driver, lambda: driver.switch_to.alert, what="the confirmation").accept()


@needs_chromium
async def test_user_token_memories_activity_and_forget(up: str) -> None:
    async with mcp(up, "memory", OWNER) as owner:
        await ok(owner, "memory_add", {"content": f"Bob's locker code is {BOB_SECRETS[0]}", "user_id": "bob", "infer": False})
    async with mcp(up, "persona", OWNER) as owner:
        bob = await ok(owner, "user_create", {"name": "Bob"})
        await ok(owner, "profile_update", {"user_id": bob["user_id"], "patches": [
            {"op": "set", "field": "custom.secret", "value": BOB_SECRETS[1]}]})
    async with mcp(up, "memory", ALICE) as alice:
        await ok(alice, "memory_add", {"content": "Alice drinks green tea every morning", "infer": False})

    with browser() as driver:
        sign_in(driver, up, ALICE)
        assert by(driver, "#whoami").text == "alice"
        wait(driver, lambda: "green tea" in text(driver), what="alice's memory")

        by(driver, "#new-memory").send_keys("Alice's bike is a blue Brompton")
        by(driver, "#add").click()
        wait(driver, lambda: "blue Brompton" in by(driver, "#memories").text, what="the added memory")
        async with mcp(up, "memory", ALICE) as alice:
            listed = (await ok(alice, "memory_list", {}))["results"]
        added = next(m for m in listed if "Brompton" in m["content"])

        card = f"li[data-id='{added['id']}']"
        by(driver, f"{card} button[aria-label^='Edit']").click()
        box = by(driver, f"{card} textarea")
        box.clear()
        box.send_keys("Alice's bike is a red Brompton")
        by(driver, f"{card} button[type='submit']").click()
        wait(driver, lambda: "red Brompton" in by(driver, "#memories").text, what="the edited memory")
        async with mcp(up, "memory", ALICE) as alice:
            assert (await ok(alice, "memory_get", {"memory_id": added["id"]}))["content"] == "Alice's bike is a red Brompton"
        by(driver, f"{card} button[aria-expanded]").click()
        wait(driver, lambda: "UPDATE" in by(driver, f"{card} .history").text, what="the memory's history")

        by(driver, f"{card} button[aria-label^='Delete']").click()
        accept(driver)
        wait(driver, lambda: "Brompton" not in by(driver, "#memories").text, what="the memory gone")
        async with mcp(up, "memory", ALICE) as alice:
            assert (await call(alice, "memory_get", {"memory_id": added["id"]})).is_error

        by(driver, "#q").send_keys("tea")
        by(driver, "#search").click()
        wait(driver, lambda: "score" in by(driver, "#memories").text, what="search results")

        # another MCP host reads alice's memories with the owner's token: alice sees it in Activity
        async with mcp(up, "memory", OWNER, client="other-host") as other:
            await ok(other, "memory_list", {"user_id": "alice"})
        page(driver, "activity")
        wait(driver, lambda: "other-host" in by(driver, "#audit").text, what="the other host's read")
        row = next(r for r in by(driver, "#audit").text.splitlines() if "other-host" in r)
        assert "owner" in row and "memory_list" in row

        for name in ("people", "knowledge", "status", "avatar", "memories"):
            page(driver, name)
            idle(driver)
            seen = driver.page_source + responses(driver)
            assert not any(s in seen for s in BOB_SECRETS), f"bob's secret reached alice on {name}"
        assert "green tea" in responses(driver)  # the recorder does see the pages' responses

        by(driver, "#forget").click()
        wait(driver, lambda: by(driver, "#forget-list"), what="the forget confirmation")
        plan = by(driver, "#forget-list").text
        assert "1 memories (1 user, 0 session, 0 tool-call)" in plan and "nothing (no persona record" in plan
        by(driver, "#forget-confirm").click()
        wait(driver, lambda: "Erased 1 memories" in text(driver), what="the erasure")

    async with mcp(up, "memory", ALICE) as alice:
        assert (await ok(alice, "memory_list", {}))["total"] == 0
        entries = (await ok(alice, "memory_audit_list", {}))["entries"]
        assert not any(e["client"] == "other-host" for e in entries)  # forget erased the trail too
    async with mcp(up, "research", ALICE) as alice:  # the knowledge page's reads were erased with her
        assert (await ok(alice, "research_audit_list", {}))["entries"] == []
    async with mcp(up, "memory", BOB) as bob_s:
        assert (await ok(bob_s, "memory_list", {}))["total"] == 1  # bob's memories stay


@needs_chromium
async def test_user_token_creates_and_edits_its_own_profile(up: str) -> None:
    with browser() as driver:
        sign_in(driver, up, CAROL)
        page(driver, "people")
        by(driver, "#new-user").send_keys("Carol")
        by(driver, "#create-user").click()
        wait(driver, lambda: by(driver, "#person-h").text.startswith("Carol"), what="carol's person page")
        choose(by(driver, "#patch-field"), "identity.location")
        by(driver, "#patch-value").send_keys("Lisbon")
        by(driver, "#patch-value").submit()
        wait(driver, lambda: "Lisbon" in by(driver, "table.profile").text, what="the profile value")
        assert "manual" in by(driver, "table.profile").text
        async with mcp(up, "persona", CAROL) as carol:
            users = (await ok(carol, "user_list", {}))["users"]
            assert [u["name"] for u in users] == ["Carol"]
            profile = await ok(carol, "profile_get", {"user_id": users[0]["user_id"]})
        assert profile["identity"]["location"]["value"] == "Lisbon"
        assert not any(s in driver.page_source + responses(driver) for s in BOB_SECRETS)


@needs_chromium
async def test_user_token_adds_a_pdf_and_finds_it(up: str, tmp_path: Path) -> None:
    pdf = tmp_path / "okapis.pdf"
    pdf.write_bytes(tiny_pdf("Okapis live in the Ituri rainforest and are related to giraffes."))
    with browser() as driver:
        sign_in(driver, up, CAROL)
        page(driver, "knowledge")
        by(driver, "#doc-file").send_keys(str(pdf))
        wait(driver, lambda: "okapis" in by(driver, "#docs").text, what="the uploaded PDF")
        by(driver, "#corpus-q").send_keys("Where do okapis live?")
        by(driver, "#corpus-search").click()
        wait(driver, lambda: "Ituri" in by(driver, "#hits").text, what="the PDF's passage")
    async with mcp(up, "research", CAROL) as carol:
        hits = (await ok(carol, "corpus_search", {"query": "okapi rainforest"}))["results"]
        assert hits and "Ituri" in hits[0]["text"] and hits[0]["title"] == "okapis"
    async with mcp(up, "research", BOB) as bob_s:
        assert (await ok(bob_s, "corpus_list", {}))["total"] == 0  # carol's document is hers


def new_person(driver: Any, up: str, name: str) -> str:
    """Signed in as the owner, create a person on the People page; their user id."""
    sign_in(driver, up, OWNER)
    page(driver, "people")

    def created() -> bool:
        """Type and create once the page is idle; then open the person (under load the page may draw
        itself again while the first keys arrive, and the name typed before is gone)."""
        from selenium.webdriver.common.by import By

        if name in by(driver, "#users").text:
            heads = driver.find_elements(By.CSS_SELECTOR, "#person-h")
            if heads and heads[0].text.startswith(name):
                return True
            next(b for b in driver.find_elements(By.CSS_SELECTOR, "#users button.row") if name in b.text).click()
            return False
        field = by(driver, "#new-user")
        if not field.get_attribute("value") and "Working" not in text(driver):
            field.send_keys(name)
            by(driver, "#create-user").click()
        return False

    wait(driver, created, what=f"{name}'s person page")
    return str(by(driver, "article.person").get_attribute("data-user"))


@needs_chromium
@needs_fsdd
async def test_voice_enrolled_from_the_microphone_is_identified(up: str, tmp_path: Path) -> None:
    samples, rate = digits_of("george", "0123456789", 3)
    mic = tmp_path / "george.wav"
    sf.write(mic, np.tile(samples, 3), rate, subtype="PCM_16")  # the fake device loops it
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-audio-capture={mic}", "--autoplay-policy=no-user-gesture-required")
    with browser(*flags) as driver:
        user_id = new_person(driver, up, "George")
        for _ in range(2):
            before = int(by(driver, "#voice-count").text)
            by(driver, "#record-voice").click()
            wait(driver, lambda b=before: int(by(driver, "#voice-count").text) > b, what="the voiceprint grow")
        if FACES.is_dir():  # and a face from a file
            by(driver, "#face-file").send_keys(str(FACES / "obama" / "obama_1.jpg"))
            wait(driver, lambda: by(driver, "#face-count").text == "1", within=120, what="the face enrolled")
    other, rate = digits_of("george", "9876543210", 7)
    async with mcp(up, "persona", OWNER) as s:
        match = await ok(s, "speaker_identify", {"audio": wav_b64(other, rate)})
        assert match["decision"] == "known" and match["user_id"] == user_id, match
        if FACES.is_dir():
            faces = (await ok(s, "face_identify", {"image": file_b64(FACES / "obama" / "obama_2.jpg")}))["faces"]
            assert faces[0]["decision"] == "known" and faces[0]["user_id"] == user_id, faces


def test_http_guards(up: str) -> None:
    """CSP on every page, the token on every API call, CSRF and Origin on every change, rebinding refused."""
    index = httpx.get(f"{up}/")
    assert index.status_code == 200 and "script-src 'self'" in index.headers["content-security-policy"]
    assert "<script>" not in index.text and "http" not in index.text.replace("http-equiv", "")  # nothing inline or remote
    assert httpx.get(f"{up}/assets/app.js").headers["content-security-policy"]
    assert httpx.get(f"{up}/assets/..%2fapp.py").status_code == 404  # no way out of the static folder
    assert httpx.get(f"{up}/api/session").status_code == 401
    assert httpx.get(f"{up}/api/session", headers={"Authorization": "Bearer wrong"}).status_code == 401
    session = httpx.get(f"{up}/api/session", headers={"Authorization": f"Bearer {ALICE}"}).json()
    assert session["user_id"] == "alice" and not session["owner"]
    good = {"Authorization": f"Bearer {ALICE}", "X-CSRF-Token": session["csrf"], "Origin": up}
    body = {"server": "memory", "tool": "memory_list", "arguments": {}}
    assert httpx.post(f"{up}/api/call", headers=good, json=body).json()["ok"]
    for bad in ({"Origin": "http://evil.example"}, {"Origin": ""}, {"X-CSRF-Token": "0" * 64},
                {"X-CSRF-Token": httpx.get(f"{up}/api/session", headers={"Authorization": f"Bearer {BOB}"}).json()["csrf"]}):
        assert httpx.post(f"{up}/api/call", headers={**good, **bad}, json=body).status_code == 403, bad
    assert httpx.post(f"{up}/api/call", headers={**good, "Host": "evil.example"}, json=body).status_code == 421
    assert httpx.get(f"{up}/", headers={"Host": "evil.example"}).status_code == 421
    refused = httpx.post(f"{up}/api/call", headers=good, json={**body, "arguments": {"user_id": "bob"}}).json()
    assert not refused["ok"] and "scoped to user 'alice'" in refused["text"]  # the server's own check
    assert httpx.post(f"{up}/api/call", headers=good, json={"server": "nope", "tool": "x"}).status_code == 400
    huge = httpx.post(f"{up}/api/corpus/upload", headers={**good, "Content-Type": "application/json"},
                      content=b'{"name": "a.pdf", "data": "' + b"A" * 31_000_000 + b'"}', timeout=60)
    assert huge.status_code == 413
    bad_doc = httpx.post(f"{up}/api/corpus/upload", headers=good, json={"name": "x.exe", "data": "AAAA"})
    assert bad_doc.status_code == 400 and ".pdf" in bad_doc.json()["error"]


async def test_export_streams_every_memory(up: str) -> None:
    async with mcp(up, "memory", OWNER) as owner:
        items = [{"content": f"Export line {i} for dora", "user_id": "dora", "infer": False} for i in range(450)]
        await ok(owner, "memory_add_batch", {"items": items})
        await ok(owner, "tool_call_record", {"tool": "web_search", "user_id": "dora", "task": "find a café"})
    csrf = httpx.get(f"{up}/api/session", headers={"Authorization": f"Bearer {OWNER}"}).json()["csrf"]
    headers = {"Authorization": f"Bearer {OWNER}", "X-CSRF-Token": csrf, "Origin": up}
    got = httpx.post(f"{up}/api/export", headers=headers, json={"format": "json", "user_id": "dora"}, timeout=60)
    assert got.headers["content-disposition"] == 'attachment; filename="memories-dora.json"'
    memories = json.loads(got.text)
    assert len(memories) == 451 and {m["scope"] for m in memories} == {"user", "tool"}  # three pages of 200, all scopes
    md = httpx.post(f"{up}/api/export", headers=headers, json={"format": "markdown", "user_id": "dora"}, timeout=60)
    assert md.text.startswith("# Memories of dora") and md.text.count("Export line") == 450
    bob = httpx.get(f"{up}/api/session", headers={"Authorization": f"Bearer {BOB}"}).json()["csrf"]
    refused = httpx.post(f"{up}/api/export", json={"format": "json", "user_id": "dora"},
                         headers={"Authorization": f"Bearer {BOB}", "X-CSRF-Token": bob, "Origin": up})
    assert refused.status_code == 403 and "Export line" not in refused.text


def test_loopback_without_tokens_opens_as_owner(tmp_path: Path) -> None:
    """No token configured (loopback only, as `up` enforces): the console signs in as the owner."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from clients.console.app import routes
    from mcp_servers.core.settings import Settings

    app = Starlette(routes=routes("http://127.0.0.1:1", Settings(home=tmp_path)))
    session = TestClient(app).get("/api/session").json()
    assert session["owner"] and session["user_id"] is None and not session["auth_required"]


def test_console_command_opens_the_url(tmp_path: Path) -> None:
    import subprocess

    from tests.support import ALPHAAVATAR

    opened = tmp_path / "opened"
    browser_cmd = tmp_path / "browser"
    browser_cmd.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser_cmd.chmod(0o755)
    env = server_env(tmp_path, BROWSER=str(browser_cmd))
    out = subprocess.run([ALPHAAVATAR, "console", "--port", "8799"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "http://127.0.0.1:8799/"
    assert wait(None, lambda: opened.exists() and opened.read_text().strip(), within=10) == "http://127.0.0.1:8799/"


@needs_chromium
async def test_chat_with_the_agent_shows_why_it_said_that(up: str, llm: FakeOpenAI) -> None:
    async with mcp(up, "memory", DAN) as dan:
        await ok(dan, "memory_add", {"content": "Dan drinks green tea every morning", "infer": False})
    with browser() as driver:
        sign_in(driver, up, DAN)
        page(driver, "avatar")
        driver.execute_script(WATCH_REPLY)
        by(driver, "#chat-text").send_keys("What do I drink in the morning?")
        by(driver, "#chat-send").click()
        wait(driver, lambda: by(driver, ".why summary"), within=120, what="the agent's whole reply")
        shown = [t for t in driver.execute_script("return window.__replies") if t]
        assert shown[-1] == CHAT_REPLY == by(driver, "#chat .reply-text").text
        partial = [t for t in shown[:-1] if CHAT_REPLY.startswith(t)]
        assert len(partial) >= 2 and partial == shown[:-1], shown  # the reply streamed in, piece by piece
        by(driver, ".why summary").click()
        assert "Dan drinks green tea every morning" in by(driver, ".why-memories").text
    sent = [json.dumps(b) for b in llm.requests if "What do I drink" in json.dumps(b)]
    assert sent and "Dan drinks green tea every morning" in sent[0]  # the memory was in the LLM's context
    assert not any(s in "".join(sent) for s in BOB_SECRETS)  # and nobody else's


def viewer_state(driver: Any) -> dict[str, Any]:
    """The embedded viewer's drawing state (its <svg> data attributes), read inside its frame."""
    driver.switch_to.frame(by(driver, "#viewer"))
    try:
        return dict(driver.execute_script("return {...document.getElementById('avatar').dataset}"))
    finally:
        driver.switch_to.default_content()


@needs_chromium
async def test_owner_watches_the_character_with_a_token_never_in_a_url(up: str) -> None:
    with browser() as driver:
        sign_in(driver, up, OWNER)
        page(driver, "avatar")
        assert by(driver, "#viewer").get_attribute("src") == f"{up}/character/"
        wait(driver, lambda: viewer_state(driver)["connected"] == "true", what="the viewer connected with the token")
        async with mcp(up, "character", OWNER) as s:
            await ok(s, "character_express", {"emotion": "surprised"})
        wait(driver, lambda: viewer_state(driver)["emotion"] == "surprised", what="the expression in the viewer")
        urls = driver.execute_script("return performance.getEntries().map(e => e.name)")
        driver.switch_to.frame(by(driver, "#viewer"))
        urls += driver.execute_script("return [location.href, ...performance.getEntries().map(e => e.name)]")
        driver.switch_to.default_content()
        assert not any(OWNER in u for u in urls), urls

        by(driver, "#signout").click()
        sign_in(driver, up, DAN)  # a user token: the page says whose the character is
        page(driver, "avatar")
        assert "takes the owner's token" in by(driver, "#viewer-owners").text
        assert not driver.find_elements("css selector", "#viewer")

    with browser() as driver:  # the viewer on its own: it asks for the owner's token, refuses a user's
        driver.get(f"{up}/character/")
        wait(driver, lambda: by(driver, "#signin").is_displayed(), what="the viewer's sign-in")
        by(driver, "#token").send_keys(DAN)
        by(driver, "#token").submit()
        wait(driver, lambda: "refused this token" in by(driver, "#why").text, what="a user token refused")
        assert by(driver, "svg#avatar").get_attribute("data-connected") == "false"
        by(driver, "#token").send_keys(OWNER)
        by(driver, "#token").submit()
        wait(driver, lambda: by(driver, "svg#avatar").get_attribute("data-connected") == "true", what="the owner watching")
        assert not by(driver, "#signin").is_displayed()
        assert driver.current_url == f"{up}/character/"



@needs_chromium
async def test_owners_chat_makes_the_character_speak(up: str) -> None:
    with browser() as driver:
        sign_in(driver, up, OWNER)
        page(driver, "avatar")
        wait(driver, lambda: viewer_state(driver)["connected"] == "true", what="the viewer connected")
        before = viewer_state(driver).get("utterance", "")
        by(driver, "#chat-text").send_keys("What do I drink in the morning?")
        by(driver, "#chat-send").click()
        wait(driver, lambda: by(driver, ".why summary"), within=120, what="the agent's reply")
        utterance = wait(driver, lambda: (u := viewer_state(driver).get("utterance")) != before and u,
                         what="the character speaking the reply in the viewer")
    async with mcp(up, "character", OWNER) as s:
        events = (await ok(s, "character_status", {}))["last_events"]
    spoken = [e for e in events if e["kind"] == "speech" and e.get("utterance_id") == utterance]
    assert spoken and spoken[0]["text"] == CHAT_REPLY and spoken[0]["visemes"] > 0, events


def camera_file(photo: Path, out: Path, frames: int = 5) -> Path:
    """A Y4M clip (640x480, 4:2:0) of `photo` letterboxed, for Chromium's fake camera to loop."""
    from PIL import Image

    width, height = 640, 480
    image = Image.open(photo).convert("RGB")
    image.thumbnail((width, height))
    canvas = Image.new("RGB", (width, height), (128, 128, 128))
    canvas.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    y, cb, cr = canvas.convert("YCbCr").split()
    planes = y.tobytes() + cb.resize((width // 2, height // 2)).tobytes() + cr.resize((width // 2, height // 2)).tobytes()
    out.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode() + (b"FRAME\n" + planes) * frames)
    return out


@needs_chromium
@needs_faces
async def test_face_enrolled_from_the_camera_is_identified(up: str, tmp_path: Path) -> None:
    # Rose Leslie (the voice test enrolls Obama's face): the camera frame is the photo letterboxed,
    # re-encoded by Chromium's capture and the page's canvas; identified from the original file
    clip = camera_file(FACES / "rose_leslie" / "rose_leslie_1.jpg", tmp_path / "camera.y4m")
    flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
             f"--use-file-for-fake-video-capture={clip}")
    with browser(*flags) as driver:
        user_id = new_person(driver, up, "Rose")
        by(driver, "#camera-face").click()
        wait(driver, lambda: by(driver, "#face-count").text == "1", within=120, what="the face enrolled from the camera")
    async with mcp(up, "persona", OWNER) as s:
        faces = (await ok(s, "face_identify", {"image": file_b64(FACES / "rose_leslie" / "rose_leslie_1.jpg")}))["faces"]
        assert faces[0]["decision"] == "known" and faces[0]["user_id"] == user_id, faces
        stranger = (await ok(s, "face_identify", {"image": file_b64(FACES / "biden" / "biden_1.jpg")}))["faces"]
        assert stranger[0]["user_id"] != user_id, stranger


@needs_chromium
async def test_activity_shows_a_user_who_tried_to_reach_their_data(up: str) -> None:
    """Broken: attempts against you were hidden from you, and a program naming itself the console was hidden."""
    async with mcp(up, "memory", EVE) as eve:
        mine = (await ok(eve, "memory_add", {"content": "Eve's door code is 4471", "infer": False}))["results"][0]["id"]
    async with mcp(up, "research", OWNER) as owner:
        doc = (await ok(owner, "corpus_add", {"text": "Eve's tax notes for 2025.", "title": "Eve's taxes",
                                              "user_id": "eve"}))["document"]["doc_id"]
    async with mcp(up, "memory", DAN, client="dan-script") as dan:
        for tool, args in (("memory_get", {"memory_id": mine}), ("memory_list", {"user_id": "eve"}),
                           ("memory_delete", {"memory_id": mine})):
            assert (await call(dan, tool, args)).is_error
    async with mcp(up, "research", DAN, client="dan-script") as dan:
        assert (await call(dan, "corpus_delete", {"doc_id": doc})).is_error
    async with mcp(up, "memory", OWNER, client="alphaavatar-console") as impostor:
        await ok(impostor, "memory_list", {"user_id": "eve"})

    with browser() as driver:
        sign_in(driver, up, EVE)
        page(driver, "activity")
        wait(driver, lambda: "dan-script" in by(driver, "#audit").text, what="dan's attempts")
        rows = by(driver, "#audit").text.splitlines()
        tried = [r for r in rows if "dan-script" in r]
        assert len(tried) == 4 and all("user dan" in r and "refused or failed" in r for r in tried), tried
        assert {n for r in tried for n in ("memory_get", "memory_list", "memory_delete", "corpus_delete") if n in r} == {
            "memory_get", "memory_list", "memory_delete", "corpus_delete"}
        assert "4 refused attempts by others" in by(driver, "#attempts").text
        impostor_row = next(r for r in rows if "alphaavatar-console" in r)  # a claimed name hides nothing
        assert "the owner" in impostor_row and "memory_list" in impostor_row
        assert "this console" not in by(driver, "#audit").text  # eve's own page views, hidden by default
        by(driver, "#show-console").click()
        wait(driver, lambda: "this console" in by(driver, "#audit").text, what="eve's own views through the console")
        assert script_errors(driver) == []


@needs_chromium
async def test_owner_sees_and_deletes_a_users_own_documents(up: str) -> None:
    """Broken: Knowledge, with a user selected, listed the corpus without that user's documents."""
    async with mcp(up, "research", OWNER) as owner:
        await ok(owner, "corpus_add", {"text": "Gina's allotment plan: beans by the fence.", "title": "Gina's allotment",
                                       "user_id": "gina"})
    with browser() as driver:
        sign_in(driver, up, OWNER)
        show(driver, "gina")
        page(driver, "knowledge")
        wait(driver, lambda: "Gina's allotment" in by(driver, "#docs").text, what="gina's own document")
        row = next(r for r in by(driver, "#docs").text.splitlines() if "Gina's allotment" in r)
        assert "gina" in row
        by(driver, "button[aria-label=\"Delete Gina's allotment\"]").click()
        accept(driver)
        wait(driver, lambda: "Deleted" in text(driver), what="the deletion")
        assert script_errors(driver) == []
    async with mcp(up, "research", OWNER) as owner:
        docs = (await ok(owner, "corpus_list", {"user_id": "gina"}))["documents"]
    assert not any(d["user_id"] == "gina" for d in docs)


@needs_chromium
async def test_every_page_fits_a_phone_and_logs_no_script_error(up: str) -> None:
    """Broken: People threw on every visit (the person drawn before the profile); Rough: at 390 px People
    and Activity scrolled sideways. Every page, as the owner showing a person with a profile, memories,
    documents and a trail, at desktop and phone width: no script error, no sideways scroll. Also
    profile_search's ids are the user ids the Activity page shows (Broken)."""
    async with mcp(up, "persona", OWNER) as owner:
        await ok(owner, "user_create", {"name": "Hana Kowalczyk-Wiśniewska", "user_id": "hana"})
        await ok(owner, "profile_update", {"user_id": "hana", "patches": [
            {"op": "set", "field": "identity.location", "value": "Kraków, Lesser Poland Voivodeship, Poland"},
            {"op": "add", "field": "preferences", "value": "long walks along the Vistula at dawn with a thermos of tea"},
            {"op": "add", "field": "relationships", "value": {"name": "Tomasz", "relation": "brother"}}]})
        found = (await ok(owner, "profile_search", {"query": "Vistula walks"}))["results"]
        assert found[0]["user_id"] == "hana"
        for hit in found:  # every id it answers is one user_get takes
            assert (await ok(owner, "user_get", {"user_id": hit["user_id"]}))["name"] == hit["name"]
    async with mcp(up, "memory", OWNER) as owner:
        await ok(owner, "memory_add", {"content": "Hana mentioned a very-long-unbreakable-identifier-" + "x" * 60,
                                       "user_id": "hana", "infer": False})
    from selenium.webdriver.common.by import By

    with browser() as driver:
        sign_in(driver, up, OWNER)
        show(driver, "hana")
        for size in ((1200, 900), PHONE):
            driver.set_window_size(*size)
            for name in PAGES:
                page(driver, name)
                idle(driver)
                if name == "people":
                    wait(driver, lambda: by(driver, "table.profile"), what="hana's profile")
                    assert "Vistula" in by(driver, "table.profile").text
                if name == "activity":
                    wait(driver, lambda: "profile_search" in by(driver, "#audit").text, what="the search in the trail")
                    row = next(r.text for r in driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
                               if "profile_search" in r.text)
                    assert all(h["user_id"] in row for h in found), row  # the ids user_get takes, not point ids
                time.sleep(0.2)
                assert sideways(driver) == 0, f"{name} scrolls sideways at {size}: {past_the_edge(driver)}"
                assert script_errors(driver) == [], name


@needs_chromium
def test_skip_link_stays_on_the_page(up: str) -> None:
    """Broken: 'Skip to content' pointed at #main, which the hash routes read as a page: it left for Memories."""
    from selenium.webdriver.common.keys import Keys

    with browser() as driver:
        sign_in(driver, up, CAROL)
        page(driver, "knowledge")
        driver.execute_script("document.getElementById('skip').focus()")  # as the first Tab from the top does
        assert by(driver, "#skip").location["x"] >= 0  # shown once focused
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        time.sleep(0.3)
        assert by(driver, "main").get_attribute("data-page") == "knowledge"
        assert by(driver, "#nav-knowledge").get_attribute("aria-current") == "page"
        assert driver.switch_to.active_element.get_attribute("id") == "main"
        assert driver.current_url.endswith("#/knowledge")


@needs_chromium
async def test_newest_memory_first_and_an_honest_empty_search(up: str) -> None:
    """Rough: a new memory landed anywhere in id order; a search always came back with 'results'."""
    async with mcp(up, "memory", OWNER) as owner:
        await ok(owner, "memory_add_batch", {"items": [
            {"content": f"Ivan's note {i} about the garden shed", "user_id": "ivan", "infer": False,
             "occurred_at": f"2024-01-{1 + i % 28:02d}T09:00:00Z"} for i in range(60)]})
    with browser() as driver:
        sign_in(driver, up, OWNER)
        show(driver, "ivan")
        wait(driver, lambda: by(driver, "#list-h").text == "60 memories", what="ivan's 60 memories")
        by(driver, "#new-memory").send_keys("Ivan bought a red kayak today")
        by(driver, "#add").click()
        wait(driver, lambda: by(driver, "#list-h").text == "61 memories", what="the added memory")
        assert "red kayak" in by(driver, "#memories li.memory .content").text  # the first card

        by(driver, "#q").send_keys("ALICE-SECRET-7781")
        by(driver, "#search").click()
        wait(driver, lambda: "No memory matches" in by(driver, "#list-h").text, what="an honest empty search")
        assert by(driver, "#memories").text == "" and "weak match" not in text(driver)
        by(driver, "#show-nearest").click()
        wait(driver, lambda: "weak match" in by(driver, "#memories").text, what="the nearest, marked weak")

        by(driver, "#q").clear()
        by(driver, "#q").send_keys("kayak")
        by(driver, "#search").click()
        wait(driver, lambda: "red kayak" in by(driver, "#memories li.memory .content").text, what="the match first")

        async with mcp(up, "memory", OWNER) as owner:  # what reflection derived is marked as such
            await ok(owner, "memory_add_batch", {"items": [
                {"content": f"Ivan: Tejo Marina {what}.", "user_id": "ivan", "infer": False}
                for what in ("rents out canoes", "closes at six in winter")]})
            await ok(owner, "memory_reflect", {"user_id": "ivan"})
        by(driver, "#q").clear()
        by(driver, "#q").send_keys("Tejo Marina")
        by(driver, "#search").click()
        wait(driver, lambda: "derived from 2 memories" in by(driver, "#memories").text, what="the card, marked derived")
        assert script_errors(driver) == []
