"""The research server's local corpus, end to end with no key, through a real MCP client:
real documents (the project README, the shared ARCHITECTURE.md, a PDF, an HTML file), real
MiniLM embeddings and BM25 in Qdrant Edge, bad input refused with nothing half-indexed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support import (
    ROOT,
    SHARED,
    call,
    free_port,
    http_server,
    http_session,
    ok,
    server_env,
    stdio_session,
    unhelpful,
)

ARCHITECTURE = SHARED / "ARCHITECTURE.md"
needs_architecture = pytest.mark.skipif(not ARCHITECTURE.is_file(), reason=f"{ARCHITECTURE} not found")


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica, with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


async def refused(s: ClientSession, tool: str, args: dict[str, Any], *words: str) -> str:
    r = await call(s, tool, args)
    assert r.is_error, f"{tool} accepted {args}: {r.data}"
    for w in words:
        assert w.lower() in r.text.lower(), f"{tool}: {w!r} not in {r.text!r}"
    return r.text


@needs_architecture
async def test_corpus_research_over_real_documents(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "zebras.pdf").write_bytes(tiny_pdf("Plains zebras migrate north across the Serengeti every July."))
    (docs / "owls.html").write_text(
        "<html><head><title>Owl notes</title></head><body><nav>Home</nav><article><h1>Owl notes</h1>"
        "<p>Barn owls hunt at night and find voles by sound alone, even in total darkness.</p></article></body></html>")
    roots = json.dumps([str(ROOT), str(SHARED), str(docs)])
    async with stdio_session("research", server_env(tmp_path / "home", ALPHAAVATAR_ALLOWED_ROOTS=roots)) as s:
        arch = (await ok(s, "corpus_add", {"path": str(ARCHITECTURE)}))["document"]
        readme = (await ok(s, "corpus_add", {"path": str(ROOT / "README.md"), "title": "Project README"}))["document"]
        pdf = (await ok(s, "corpus_add", {"path": str(docs / "zebras.pdf"), "title": "Zebra facts"}))["document"]
        html = (await ok(s, "corpus_add", {"path": str(docs / "owls.html")}))["document"]
        assert arch["chunks"] > 5 and arch["source_type"] == "file" and arch["title"]
        assert readme["title"] == "Project README" and pdf["chunks"] == 1
        assert html["title"] == "Owl notes"

        # A question about the design: the architecture document leads, with the passage that answers.
        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, total, message))

        res = await s.call_tool("research", {"question": "Which vector store engine is the embedded default, "
                                             "and how fast is a filtered top-10 search?", "sources": "corpus"},
                                progress_callback=on_progress)
        assert not res.is_error, res.content
        data = res.structured_content
        assert data is not None
        top = data["sources"][0]
        assert top["doc_id"] == arch["doc_id"] and top["kind"] == "corpus" and top["n"] == 1
        assert any("Qdrant Edge" in p["text"] and "1 ms" in p["text"] for p in top["passages"])
        assert data["mode"] == "evidence" and data["answer"] is None and "evidence bundle" in data["note"]
        assert data["searched"] == ["corpus"] and data["stats"]["provider_calls"] == 0
        assert progress and progress[-1][0] == progress[-1][1], progress  # ends at total
        assert [p[0] for p in progress] == sorted(p[0] for p in progress)

        # Each document answers its own question.
        for question, doc in [("When do zebras migrate across the Serengeti?", pdf),
                              ("How do barn owls find voles in the dark?", html)]:
            got = await ok(s, "research", {"question": question, "sources": "corpus", "max_sources": 2})
            assert got["sources"][0]["doc_id"] == doc["doc_id"], (question, got["sources"][0]["title"])

        # No key: sources default to the corpus; web research says what to set.
        got = await ok(s, "research", {"question": "How do barn owls hunt?"})
        assert got["searched"] == ["corpus"]
        await refused(s, "research", {"question": "latest battery news", "sources": "web"}, "TAVILY_API_KEY")
        await refused(s, "research", {"question": "latest battery news", "sources": "both"}, "TAVILY_API_KEY")
        await refused(s, "web_search", {"query": "battery news"}, "TAVILY_API_KEY")

        # corpus_search: passages carry their document.
        hits = (await ok(s, "corpus_search", {"query": "bearer token when bound beyond loopback", "limit": 3}))
        assert hits["results"] and hits["results"][0]["doc_id"] in (arch["doc_id"], readme["doc_id"])

        # Paging through corpus_list visits every document once.
        seen, cursor = [], None
        while True:
            page = await ok(s, "corpus_list", {"limit": 3, **({"cursor": cursor} if cursor else {})})
            assert page["total"] == 4 and len(page["documents"]) <= 3
            seen += [d["doc_id"] for d in page["documents"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(d["doc_id"] for d in (arch, readme, pdf, html))

        # The same text twice is one document.
        again = await ok(s, "corpus_add", {"path": str(docs / "zebras.pdf")})
        assert again["duplicate"] and again["document"]["doc_id"] == pdf["doc_id"]

        # Erasure: the document and its passages are gone, and research no longer finds them.
        await ok(s, "corpus_delete", {"doc_id": pdf["doc_id"]})
        got = await ok(s, "research", {"question": "When do zebras migrate across the Serengeti?", "sources": "corpus"})
        assert pdf["doc_id"] not in {src["doc_id"] for src in got["sources"]}
        await refused(s, "corpus_delete", {"doc_id": pdf["doc_id"]}, "no document")
        assert (await ok(s, "corpus_list", {}))["total"] == 3


async def test_user_documents_stay_with_their_user(tmp_path: Path) -> None:
    async with stdio_session("research", server_env(tmp_path)) as s:
        mine = (await ok(s, "corpus_add", {"text": "Alice keeps her spare key under the blue flowerpot.",
                                           "title": "alice notes", "user_id": "alice"}))["document"]
        await ok(s, "corpus_add", {"text": "The office opens at nine and closes at six.", "title": "office hours"})
        for who, expect in [("alice", True), ("bob", False), (None, False)]:
            args = {"query": "where is the spare key", **({"user_id": who} if who else {})}
            ids = {h["doc_id"] for h in (await ok(s, "corpus_search", args))["results"]}
            assert (mine["doc_id"] in ids) is expect, who
        assert (await ok(s, "corpus_list", {"user_id": "alice"}))["total"] == 2
        assert (await ok(s, "corpus_list", {"user_id": "bob"}))["total"] == 1


async def test_bad_input_is_refused_and_nothing_half_indexed(tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    root.mkdir()
    (root / "data.csv").write_text("a,b\n1,2\n")
    (root / "empty.txt").write_text("   \n")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    env = server_env(tmp_path / "home", ALPHAAVATAR_ALLOWED_ROOTS=json.dumps([str(root)]))
    async with stdio_session("research", env) as s:
        await ok(s, "corpus_add", {"text": "One good document about lighthouses.", "title": "lighthouses"})
        await refused(s, "research", {"question": ""}, "question")
        await refused(s, "research", {"question": "   "}, "empty")
        await refused(s, "research", {"question": "why " * 1000}, "2000")
        await refused(s, "research", {"question": "ok?", "depth": "forever"}, "depth")
        await refused(s, "research", {"question": "ok?", "max_sources": 0}, "max_sources")
        await refused(s, "corpus_add", {}, "exactly one")
        await refused(s, "corpus_add", {"text": "x", "url": "https://example.org/"}, "exactly one")
        await refused(s, "corpus_add", {"text": "  "}, "no text")
        await refused(s, "corpus_add", {"path": str(outside)}, "outside the allowed")
        await refused(s, "corpus_add", {"path": str(root / ".." / "outside.txt")}, "outside the allowed")
        await refused(s, "corpus_add", {"path": str(root / "data.csv")}, "unsupported file type")
        await refused(s, "corpus_add", {"path": str(root / "missing.md")}, "no such file")
        await refused(s, "corpus_add", {"path": str(root / "empty.txt")}, "no text")
        await refused(s, "corpus_add", {"path": str(root / "broken.pdf")}, "pdf")
        await refused(s, "corpus_add", {"url": "ftp://example.org/file.txt"}, "http")
        await refused(s, "corpus_add", {"url": "not a url"}, "http")
        await refused(s, "corpus_add", {"url": "http://10.1.2.3/page"}, "refused", "private")
        await refused(s, "web_extract", {"urls": ["http://[::1]:1/", "https://example.org/"]}, "refused")
        await refused(s, "web_extract", {"urls": []}, "urls")
        await refused(s, "corpus_delete", {"doc_id": "not-a-uuid"}, "no document")
        await refused(s, "corpus_list", {"cursor": "garbage"}, "cursor")
        await refused(s, "research_status", {"job_id": "nope"}, "no research job")
        # The server is still up and the corpus holds exactly the one good document.
        listed = await ok(s, "corpus_list", {})
        assert listed["total"] == 1 and listed["documents"][0]["title"] == "lighthouses"
        hits = await ok(s, "corpus_search", {"query": "lighthouses", "limit": 50})
        assert {h["title"] for h in hits["results"]} == {"lighthouses"}


async def test_a_failing_llm_is_named_in_words_and_the_evidence_returned(tmp_path: Path) -> None:
    """A wrong key, then an endpoint that is not there: research still answers with the evidence, and
    each warning says what to check (one wording for every LLM failure, no exception names, no key)."""
    with FakeOpenAI(lambda body: Reply(status=401)) as llm:
        for base_url, expect in [(llm.base_url, "refused the API key"),
                                 (f"http://127.0.0.1:{free_port()}/v1", "could not be reached")]:
            env = server_env(tmp_path / expect.replace(" ", "-"), ALPHAAVATAR_LLM_MODEL="fake-model",
                             OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-wrong-key")
            async with stdio_session("research", env) as s:
                await ok(s, "corpus_add", {"text": "Barn owls hunt at night and find voles by sound alone."})
                got = await ok(s, "research", {"question": "How do barn owls find voles?", "sources": "corpus"})
            assert got["mode"] == "evidence" and got["answer"] is None and got["sources"], got
            planning = [w for w in got["warnings"] if w.startswith("Planning failed")]
            writing = [w for w in got["warnings"] if w.startswith("The answer could not be written")]
            assert planning and writing, got["warnings"]
            for warning in planning + writing:
                assert expect in warning and "OPENAI" in warning, warning
                assert unhelpful(warning, "research") is None, warning
            assert "sk-wrong-key" not in json.dumps(got)


async def test_forget_user_erases_their_documents_jobs_and_trail(tmp_path: Path) -> None:
    """research_forget_user over HTTP with per-user tokens: bob cannot forget alice; alice forgets
    herself and her documents (bytes too), her research job and her audit entries are gone; bob's
    and the shared corpus stay."""
    owner, alice_token, bob_token = "owner-f0rget", "alice-f0rget", "bob-f0rget"
    env = server_env(tmp_path, ALPHAAVATAR_TOKEN=owner,
                     ALPHAAVATAR_USER_TOKENS=json.dumps({alice_token: "alice", bob_token: "bob"}))
    secret = "quokka-umbrella-5150"
    with http_server(["serve", "research", "--transport", "http"], env) as base:
        url = f"{base}/mcp"
        async with http_session(url, alice_token) as alice:
            mine = (await ok(alice, "corpus_add", {"text": f"Alice hides the {secret} in the attic.",
                                                   "title": "alice attic"}))["document"]
            await ok(alice, "corpus_add", {"text": "Alice waters the ferns every Sunday morning.", "title": "ferns"})
            job = await ok(alice, "research_start", {"question": "where is the umbrella?", "sources": "corpus"})
            await ok(alice, "research_result", {"job_id": job["job_id"], "wait_s": 30})
        async with http_session(url, bob_token) as bob:
            bobs = (await ok(bob, "corpus_add", {"text": "Bob keeps bees behind the barn.", "title": "bees"}))["document"]
            refused = await call(bob, "research_forget_user", {"user_id": "alice"})
            assert refused.is_error and "scoped to user 'bob'" in refused.text, refused.text
        async with http_session(url, owner) as admin:
            shared = (await ok(admin, "corpus_add", {"text": "The shared handbook says lunch is at noon."}))["document"]
            await ok(admin, "corpus_list", {"user_id": "alice"})  # an owner's read of alice: in her trail
            assert (await ok(admin, "corpus_list", {"user_id": "alice"}))["total"] == 3  # bob's refusal changed nothing
            trail = (await ok(admin, "research_audit_list", {"user_id": "alice"}))["entries"]
            assert {"corpus_add", "research_start", "corpus_list"} <= {e["name"] for e in trail}

        async with http_session(url, alice_token) as alice:
            forgot = await call(alice, "research_forget_user", {"user_id": "alice"})
            assert not forgot.is_error, forgot.text
            assert forgot.data == {"user_id": "alice", "documents_deleted": 2, "jobs_deleted": 1}
            assert "Forgot alice" in forgot.text and "2 document(s)" in forgot.text
            assert (await ok(alice, "research_audit_list", {}))["entries"] == []
            listed = await ok(alice, "corpus_list", {})
            assert [d["doc_id"] for d in listed["documents"]] == [shared["doc_id"]]
            found = await ok(alice, "corpus_search", {"query": f"where is the {secret} umbrella attic", "limit": 50})
            assert mine["doc_id"] not in {h["doc_id"] for h in found["results"]}
            assert (await call(alice, "research_status", {"job_id": job["job_id"]})).is_error
        async with http_session(url, owner) as admin:
            after = (await ok(admin, "research_audit_list", {"user_id": "alice"}))["entries"]
            assert [e["name"] for e in after] == ["research_status", "corpus_search", "corpus_list"]  # only since
            bob_trail = (await ok(admin, "research_audit_list", {"user_id": "bob"}))["entries"]
            assert [(e["name"], e["ok"]) for e in bob_trail] == [("research_forget_user", False), ("corpus_add", True)]
            bob_listed = await ok(admin, "corpus_list", {"user_id": "bob"})
            assert {d["doc_id"] for d in bob_listed["documents"]} == {bobs["doc_id"], shared["doc_id"]}
    stored = b"".join(p.read_bytes() for p in (tmp_path / "research").rglob("*") if p.is_file())
    assert secret.encode() not in stored  # erased from the files, not just hidden
    assert b"Bob keeps bees" in stored
