"""Hosts that read only text get a short summary a person can read, not the structured JSON again."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import Result, call, server_env, stdio_session


def summary(r: Result) -> str:
    assert not r.is_error, r.text
    try:
        json.loads(r.text)
    except ValueError:
        return r.text
    raise AssertionError(f"the text is a JSON dump: {r.text[:200]}")


async def test_character_tools_say_what_happened(tmp_path: Path) -> None:
    async with stdio_session("character", server_env(tmp_path)) as s:
        assert summary(await call(s, "character_express", {"emotion": "happy", "intensity": 0.7})) \
            .startswith("Sent expression happy at 0.7 (event ")
        assert "motion nod" in summary(await call(s, "character_motion", {"name": "nod"}))
        assert "gaze to (-0.5, 0.25)" in summary(await call(s, "character_gaze", {"x": -0.5, "y": 0.25}))
        assert "state listening" in summary(await call(s, "character_state", {"state": "listening"}))
        assert "eye_open = 0.3" in summary(await call(s, "character_set_param", {"name": "eye_open", "value": 0.3}))
        spoke = summary(await call(s, "character_speak", {"text": "[happy] Hello there! [bogus] Bye."}))
        assert spoke.startswith("Speaking 'Hello there! Bye.'") and "timing estimated from the text" in spoke
        assert "happy at 0 ms" in spoke and "Dropped tags (no known emotion): [bogus]." in spoke
        assert summary(await call(s, "character_interrupt", {})).startswith("Stopped ")
        status = summary(await call(s, "character_status", {}))
        assert "0 renderers connected" in status and "state idle" in status.lower()


async def test_research_tools_say_what_happened(tmp_path: Path) -> None:
    async with stdio_session("research", server_env(tmp_path)) as s:
        text = "Barn owls hunt at night and find voles by sound alone, even in total darkness."
        added = await call(s, "corpus_add", {"text": text, "title": "Owl notes"})
        doc_id = added.data["document"]["doc_id"]
        assert summary(added).startswith(f"Added: Owl notes ({doc_id}, shared; 1 passages")
        assert summary(await call(s, "corpus_add", {"text": text})).startswith("Already in the corpus: Owl notes")
        found = summary(await call(s, "corpus_search", {"query": "how do owls find voles"}))
        assert f"Owl notes ({doc_id} #0): Barn owls hunt" in found
        assert summary(await call(s, "corpus_list", {})).startswith("1 of 1 document(s):\nOwl notes")
        job = await call(s, "research_start", {"question": "How do barn owls hunt?", "sources": "corpus"})
        assert summary(job).startswith(f"Research job {job.data['job_id']} is ")
        assert "Research job" in summary(await call(s, "research_status", {"job_id": job.data["job_id"]}))
        result = summary(await call(s, "research_result", {"job_id": job.data["job_id"], "wait_s": 30}))
        assert result.startswith("Evidence for: How do barn owls hunt?") and "[1] Owl notes" in result
        cancelled = summary(await call(s, "research_cancel", {"job_id": job.data["job_id"]}))
        assert cancelled.startswith(f"Research job {job.data['job_id']} is done (3/3, ")  # finished before the cancel
        assert summary(await call(s, "corpus_delete", {"doc_id": doc_id})).startswith("Deleted Owl notes")
        assert summary(await call(s, "corpus_list", {})) == "No documents."
