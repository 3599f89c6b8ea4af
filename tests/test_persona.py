"""The persona server through a real MCP client: real FSDD speech, real photos, real models."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
from mcp import ClientSession

from tests.datasets import FACES, FSDD, RATE, file_b64, fsdd, needs_faces, needs_fsdd, wav_b64
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support import call, dumps, http_server, http_session, ok, server_env, stdio_session


async def new_user(s: ClientSession, name: str) -> str:
    return str((await ok(s, "user_create", {"name": name}))["user_id"])


TOOLS = {"speaker_enroll", "speaker_identify", "speaker_verify", "speaker_segment", "face_enroll", "face_identify",
         "identify", "user_create", "user_get", "user_list", "user_rename", "user_merge", "user_forget",
         "profile_get", "profile_update", "profile_extract", "profile_history", "profile_search"}


@needs_fsdd
async def test_voices_enroll_identify_reject_provisional_merge_segment(tmp_path: Path) -> None:
    utts = fsdd()
    async with stdio_session("persona", server_env(tmp_path)) as s:
        listed = {t.name: t for t in (await s.list_tools()).tools}
        assert TOOLS <= set(listed)
        assert all(listed[t].output_schema for t in TOOLS)

        ids = {spk: await new_user(s, spk.title()) for spk in ("george", "jackson", "lucas")}
        for spk, uid in ids.items():
            r = await ok(s, "speaker_enroll", {"user_id": uid, "audio": [wav_b64(w) for w in utts[spk][:3]]})
            assert r["added"] == 3 and r["voice_samples"] == {"enroll": 3}

        # Enrolled speakers are named; nicolas, never enrolled, is rejected.
        for spk, uid in ids.items():
            for w in utts[spk][3:8]:
                r = await ok(s, "speaker_identify", {"audio": wav_b64(w)})
                assert (r["decision"], r["user_id"], r["name"]) == ("known", uid, spk.title()), r
                assert r["score"] >= r["threshold"] and r["margin"] > 0 and r["candidates"][0]["user_id"] == uid
        for w in utts["nicolas"][:8]:
            r = await ok(s, "speaker_identify", {"audio": wav_b64(w)})
            assert r["decision"] != "known" and r["user_id"] is None, r
        # ~1 s clips: a stricter threshold than for long speech, never a wrong name.
        short = fsdd(2)["nicolas"][:10]
        for w in short:
            r = await call(s, "speaker_identify", {"audio": wav_b64(w)})
            assert r.is_error or r.data["decision"] != "known", r.data
        long_th = (await ok(s, "speaker_identify", {"audio": wav_b64(utts["george"][9])}))["threshold"]
        short_th = (await ok(s, "speaker_identify", {"audio": wav_b64(fsdd(2)["george"][30])}))["threshold"]
        assert short_th > long_th

        # Adaptation from a confident match: bounded, visible, reversible.
        adapted = await ok(s, "speaker_identify", {"audio": wav_b64(utts["george"][12]), "adapt": True})
        assert adapted["adapted"] and adapted["user_id"] == ids["george"]
        assert (await ok(s, "user_get", {"user_id": ids["george"]}))["voice_samples"] == {"enroll": 3, "adapted": 1}
        undone = await ok(s, "speaker_reset", {"user_id": ids["george"]})
        assert undone["removed"] == 1 and undone["voice_samples"] == {"enroll": 3}

        verify = await ok(s, "speaker_verify", {"user_id": ids["lucas"], "audio": wav_b64(utts["lucas"][10])})
        assert verify["decision"] == "known" and verify["claimed_user_id"] == ids["lucas"]
        verify = await ok(s, "speaker_verify", {"user_id": ids["lucas"], "audio": wav_b64(utts["george"][10])})
        assert verify["decision"] != "known"

        # A new voice gets a provisional user; the same voice later matches it.
        first = await ok(s, "speaker_identify", {"audio": wav_b64(utts["nicolas"][10]), "create_if_unknown": True})
        guest = first["created_user_id"]
        assert first["decision"] == "unknown" and guest
        again = await ok(s, "speaker_identify", {"audio": wav_b64(utts["nicolas"][11]), "adapt": True})
        assert again["decision"] == "known" and again["user_id"] == guest and again["provisional"] is True
        listed_prov = await ok(s, "user_list", {"provisional": True})
        assert [u["user_id"] for u in listed_prov["users"]] == [guest]

        # Named later, merged into an existing user: the voice follows, the guest is gone.
        renamed = await ok(s, "user_rename", {"user_id": guest, "name": "Nico"})
        assert renamed["provisional"] is False and renamed["name"] == "Nico"
        nicolas = await new_user(s, "Nicolas")
        await ok(s, "profile_update", {"user_id": guest, "patches": [
            {"op": "add", "field": "preferences", "value": "likes chess"}]})
        merged = await ok(s, "user_merge", {"user_id": guest, "into_user_id": nicolas})
        assert merged["voice_samples_moved"] >= 1 and merged["facts_added"] == 1
        assert (await call(s, "user_get", {"user_id": guest})).is_error
        r = await ok(s, "speaker_identify", {"audio": wav_b64(utts["nicolas"][12])})
        assert (r["decision"], r["user_id"]) == ("known", nicolas)
        history = await ok(s, "profile_history", {"user_id": nicolas})
        assert "merge" in [c["op"] for c in history["changes"]]
        reset = await ok(s, "speaker_reset", {"user_id": nicolas})
        assert reset["voice_samples"].get("adapted", 0) == 0

        # Two enrolled speakers alternating in one recording.
        gap = np.zeros(int(0.4 * RATE), dtype=np.float32)
        turns = [("george", utts["george"][30]), ("jackson", utts["jackson"][30]),
                 ("george", utts["george"][31]), ("jackson", utts["jackson"][31])]
        pieces, truth, t = [], [], 0.0
        for spk, w in turns:
            truth.append((spk, t, t + len(w) / RATE))
            pieces += [w, gap]
            t += (len(w) + len(gap)) / RATE
        seg = await ok(s, "speaker_segment", {"audio": wav_b64(np.concatenate(pieces))})
        assert {sp["user_id"] for sp in seg["speakers"] if sp["decision"] == "known"} == {ids["george"], ids["jackson"]}
        covered = []
        for spk, start, end in truth:
            right = sum(max(0.0, min(end, x["end"]) - max(start, x["start"]))
                        for x in seg["segments"] if x["user_id"] == ids[spk])
            assert right >= 0.5 * (end - start), (spk, start, end, seg["segments"])
            covered.append((right, end - start))
        assert sum(r for r, _ in covered) >= 0.8 * sum(d for _, d in covered), seg["segments"]

        # Forget: the voice is no longer recognised, the user is gone.
        gone = await ok(s, "user_forget", {"user_id": ids["george"]})
        assert gone["voice_samples"] == 3 and gone["compacted"]
        r = await ok(s, "speaker_identify", {"audio": wav_b64(utts["george"][5])})
        assert r["user_id"] != ids["george"] and r["decision"] != "known"
        assert (await call(s, "user_get", {"user_id": ids["george"]})).is_error


@needs_faces
async def test_faces_enroll_identify_reject_group(tmp_path: Path) -> None:
    async with stdio_session("persona", server_env(tmp_path)) as s:
        obama, biden = await new_user(s, "Obama"), await new_user(s, "Biden")
        r = await ok(s, "face_enroll", {"user_id": obama, "image": [file_b64(FACES / "obama" / f"obama_{i}.jpg")
                                                                  for i in (1, 2)]})
        assert r["added"] == 2 and r["face_samples"] == 2
        await ok(s, "face_enroll", {"user_id": biden, "image": file_b64(FACES / "biden" / "biden_1.jpg")})

        r = await ok(s, "face_identify", {"image": file_b64(FACES / "obama" / "obama_3.jpg")})
        assert len(r["faces"]) == 1 and (r["faces"][0]["decision"], r["faces"][0]["user_id"]) == ("known", obama)
        r = await ok(s, "face_identify", {"image": file_b64(FACES / "rose_leslie" / "rose_leslie_1.jpg")})
        assert len(r["faces"]) == 1 and r["faces"][0]["decision"] == "unknown" and r["faces"][0]["user_id"] is None

        group = file_b64(FACES / "groups" / "two_people.jpg")
        r = await ok(s, "face_identify", {"image": group})
        assert len(r["faces"]) == 2
        assert {f["user_id"] for f in r["faces"]} == {obama, biden}
        for f in r["faces"]:
            box = f["box"]
            assert 0 <= box["left"] < box["right"] <= r["width"] and 0 <= box["top"] < box["bottom"] <= r["height"]
        # Enrolling from a photo of two people must say which face.
        rose = await new_user(s, "Rose")
        err = await call(s, "face_enroll", {"user_id": rose, "image": group})
        assert err.is_error and "face_index" in err.text
        assert (await ok(s, "user_get", {"user_id": rose}))["face_samples"] == 0

        face_only = await ok(s, "identify", {"image": file_b64(FACES / "obama" / "obama_3.jpg")})
        assert (face_only["decision"], face_only["user_id"]) == ("known", obama)
        if not FSDD.is_dir():
            return
        # Voice and face fused (george's voice stands in for Obama's).
        utts = fsdd()
        await ok(s, "speaker_enroll", {"user_id": obama, "audio": [wav_b64(w) for w in utts["george"][:3]]})
        photo = file_b64(FACES / "obama" / "obama_3.jpg")
        agree = await ok(s, "identify", {"audio": wav_b64(utts["george"][5]), "image": photo})
        assert (agree["decision"], agree["user_id"]) == ("known", obama) and agree["score"] >= 1.0, agree
        clash = await ok(s, "identify", {"audio": wav_b64(utts["jackson"][5]), "image": photo})
        assert clash["decision"] == "uncertain" and clash["face"]["decision"] == "known", clash
        stranger = await ok(s, "identify", {"audio": wav_b64(utts["nicolas"][5]), "create_if_unknown": True,
                                            "image": file_b64(FACES / "rose_leslie" / "rose_leslie_1.jpg")})
        assert stranger["decision"] == "unknown" and stranger["created_user_id"]
        assert (await ok(s, "user_get", {"user_id": stranger["created_user_id"]}))["provisional"] is True


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size (a decompression bomb) but holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@needs_fsdd
async def test_bad_input_is_refused_and_nothing_half_written(tmp_path: Path) -> None:
    utts = fsdd()
    rng = np.random.default_rng(0)
    png = _png_header_only(8, 8)
    bad_audio = {
        "silence": wav_b64(np.zeros(3 * RATE, dtype=np.float32)),
        "noise": wav_b64(rng.normal(0, 0.2, 3 * RATE).astype(np.float32)),
        "0.2 s": wav_b64(utts["george"][0][: int(0.2 * RATE)]),
        "corrupt": base64.b64encode(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(rng.integers(0, 255, 200, dtype=np.uint8))).decode(),
        "png": base64.b64encode(png).decode(),
        "not base64": "this is not audio!",
        "too long": wav_b64(np.tile(utts["george"][0], 30)),
    }
    async with stdio_session("persona", server_env(tmp_path)) as s:
        uid = await new_user(s, "George")
        await ok(s, "speaker_enroll", {"user_id": uid, "audio": wav_b64(utts["george"][0])})
        for what, value in bad_audio.items():
            for tool, args in (("speaker_identify", {"audio": value}), ("speaker_enroll", {"user_id": uid, "audio": value})):
                r = await call(s, tool, args)
                assert r.is_error, (what, tool, r.data)
                assert "Error executing tool" in r.text and len(r.text) < 400, r.text
        # A good clip and a bad one: neither is enrolled.
        r = await call(s, "speaker_enroll", {"user_id": uid, "audio": [wav_b64(utts["george"][1]), bad_audio["noise"]]})
        assert r.is_error and "Clip 2 of 2" in r.text
        assert (await ok(s, "user_get", {"user_id": uid}))["voice_samples"] == {"enroll": 1}
        # Other formats and rates are fine: FLAC at 44.1 kHz, stereo.
        stereo = np.stack([utts["george"][2]] * 2, axis=1)
        import soxr

        flac = wav_b64(soxr.resample(stereo, RATE, 44100), 44100, "FLAC")
        assert (await ok(s, "speaker_identify", {"audio": flac}))["user_id"] == uid
        ogg = wav_b64(soxr.resample(utts["george"][2], RATE, 16000), 16000, "OGG")
        assert (await ok(s, "speaker_identify", {"audio": ogg}))["user_id"] == uid

        bomb = await call(s, "face_identify", {"image": base64.b64encode(_png_header_only(30000, 30000)).decode()})
        assert bomb.is_error and "MP" in bomb.text
        wav_as_image = await call(s, "face_identify", {"image": wav_b64(utts["george"][0])})
        assert wav_as_image.is_error and "WAV" in wav_as_image.text
        for tool, args in (("user_get", {"user_id": "nobody"}), ("profile_get", {"user_id": "0" * 8}),
                           ("speaker_verify", {"user_id": "3f1c1d9e-7c1a-4f8e-9a53-0c4a7e1f2b3c",
                                               "audio": wav_b64(utts["george"][3])}),
                           ("user_forget", {"user_id": "3f1c1d9e-7c1a-4f8e-9a53-0c4a7e1f2b3c"})):
            r = await call(s, tool, args)
            assert r.is_error and "No user" in r.text, (tool, r.text)
        path = await call(s, "speaker_identify", {"audio": str(FSDD / "0_george_0.wav")})
        assert path.is_error and "ALLOWED_ROOTS" in path.text
        # Still serving, and nothing changed.
        r = await ok(s, "speaker_identify", {"audio": wav_b64(utts["george"][4])})
        assert r["user_id"] == uid
        assert (await ok(s, "user_list", {}))["total"] == 1
    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "george.wav", utts["george"][5], RATE)
    async with stdio_session("persona", server_env(tmp_path, ALPHAAVATAR_ALLOWED_ROOTS=f'["{clips}"]')) as s:
        r = await ok(s, "speaker_identify", {"audio": str(clips / "george.wav")})
        assert r["user_id"] == uid
        outside = await call(s, "speaker_identify", {"audio": str(FSDD / "0_george_0.wav")})
        assert outside.is_error and "outside the allowed roots" in outside.text


async def test_profiles_provenance_history_search(tmp_path: Path) -> None:
    async with stdio_session("persona", server_env(tmp_path)) as s:
        ada, bob = await new_user(s, "Ada"), await new_user(s, "Bob")
        upd = await ok(s, "profile_update", {"user_id": ada, "source": "session", "source_ref": "s-1", "patches": [
            {"op": "set", "field": "identity.location", "value": "Lyon", "confidence": 0.8, "evidence": "I live in Lyon"},
            {"op": "set", "field": "identity.time_zone", "value": "Europe/Paris"},
            {"op": "add", "field": "preferences", "value": "enjoys trekking in the Alps"},
            {"op": "add", "field": "relationships", "value": {"name": "Marie", "relation": "sister"}},
            {"op": "add", "field": "important_dates", "value": {"label": "birthday", "date": "03-14"}},
            {"op": "set", "field": "custom.favourite_team", "value": "OL"},
        ]})
        assert [c["op"] for c in upd["changes"]] == ["set"] * 2 + ["add"] * 3 + ["set"]
        prof = upd["profile"]
        loc = prof["identity"]["location"]
        assert (loc["value"], loc["source"], loc["source_ref"], loc["confidence"]) == ("Lyon", "session", "s-1", 0.8)
        assert prof["relationships"][0]["value"] == {"name": "Marie", "relation": "sister"}
        assert prof["custom"]["favourite_team"]["value"] == "OL"

        # Moving, seeing a fact again, removing one: each leaves a record.
        await ok(s, "profile_update", {"user_id": ada, "patches": [
            {"op": "set", "field": "identity.location", "value": "Grenoble"},
            {"op": "add", "field": "preferences", "value": "Enjoys  trekking in the alps"},
            {"op": "remove", "field": "custom.favourite_team"}]})
        prof = await ok(s, "profile_get", {"user_id": ada})
        assert prof["identity"]["location"]["value"] == "Grenoble" and prof["identity"]["location"]["source"] == "manual"
        assert len(prof["preferences"]) == 1 and prof["preferences"][0]["last_seen"] > prof["preferences"][0]["first_seen"]
        assert "favourite_team" not in prof["custom"]
        loc_history = await ok(s, "profile_history", {"user_id": ada, "field": "identity.location"})
        assert [(c["old"], c["new"]) for c in loc_history["changes"]] == [(None, "Lyon"), ("Lyon", "Grenoble")]
        page1 = await ok(s, "profile_history", {"user_id": ada, "limit": 4})
        page2 = await ok(s, "profile_history", {"user_id": ada, "limit": 50, "cursor": page1["next_cursor"]})
        ops = [c["op"] for c in page1["changes"] + page2["changes"]]
        assert ops[0] == "create" and ops[-3:] == ["set", "confirm", "remove"] and len(ops) == 10
        times = [c["at"] for c in page1["changes"] + page2["changes"]]
        assert times == sorted(times)

        # Invalid patches change nothing.
        for patches in ([{"op": "set", "field": "identity.time_zone", "value": "Mars/Olympus"}],
                        [{"op": "add", "field": "identity.location", "value": "Paris"}],
                        [{"op": "set", "field": "shoe_size", "value": "42"}],
                        [{"op": "add", "field": "important_dates", "value": {"label": "x", "date": "13-45"}}],
                        [{"op": "set", "field": "identity.occupation", "value": "pilot"},
                         {"op": "remove", "field": "preferences"}]):
            r = await call(s, "profile_update", {"user_id": ada, "patches": patches})
            assert r.is_error and "Nothing was changed" in r.text, r.text
        assert (await ok(s, "profile_get", {"user_id": ada}))["identity"].get("occupation") is None

        await ok(s, "profile_update", {"user_id": bob, "patches": [
            {"op": "add", "field": "preferences", "value": "plays jazz piano in a quartet"}]})
        found = await ok(s, "profile_search", {"query": "who likes hiking in the mountains?"})
        assert found["results"][0]["user_id"] == ada
        found = await ok(s, "profile_search", {"query": "jazz"})
        assert found["results"][0]["user_id"] == bob and any("jazz" in m for m in found["results"][0]["matches"])

        no_llm = await call(s, "profile_extract", {"user_id": ada, "conversation": "I moved to Nice."})
        assert no_llm.is_error and "ALPHAAVATAR_LLM_MODEL" in no_llm.text


async def test_profile_extract_with_an_openai_compatible_llm(tmp_path: Path) -> None:
    patches = {"patches": [
        {"op": "set", "field": "identity.occupation", "value": "nurse", "confidence": 0.9,
         "evidence": "I work nights as a nurse"},
        {"op": "add", "field": "goals", "value": "run a marathon", "confidence": 0.7,
         "evidence": "I want to run a marathon next year"},
        {"op": "add", "field": "preferences", "value": "loves opera", "confidence": 0.6, "evidence": "I adore opera"},
        {"op": "set", "field": "eye_colour", "value": "green", "evidence": "I work nights as a nurse"},
    ]}

    conversation = [{"role": "user", "content": "Hi! I work nights as a nurse, so I sleep late."},
                    {"role": "assistant", "content": "That sounds tiring."},
                    {"role": "user", "content": "It is. I want to run a marathon next year though."}]
    with FakeOpenAI(lambda body: Reply(content=json.dumps(patches))) as fake:
        env = server_env(tmp_path, OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="test-key", ALPHAAVATAR_LLM_MODEL="fake")
        async with stdio_session("persona", env) as s:
            uid = await new_user(s, "Nora")
            r = await ok(s, "profile_extract", {"user_id": uid, "conversation": conversation, "session_id": "s-9"})
            valid = {p["patch"]["field"]: p["valid"] for p in r["proposals"]}
            assert valid == {"identity.occupation": True, "goals": True, "preferences": False, "eye_colour": False}
            assert r["applied"] == [] and (await ok(s, "profile_get", {"user_id": uid}))["identity"]["occupation"] is None
            r = await ok(s, "profile_extract", {"user_id": uid, "conversation": conversation, "session_id": "s-9",
                                                "apply": True})
            assert [c["field"] for c in r["applied"]] == ["identity.occupation", "goals"]
            prof = await ok(s, "profile_get", {"user_id": uid})
            job = prof["identity"]["occupation"]
            assert (job["value"], job["source"], job["source_ref"], job["evidence"]) == (
                "nurse", "session", "s-9", "I work nights as a nurse")
        request = fake.requests[-1]
        assert request["model"] == "fake" and "run a marathon next year" in request["messages"][-1]["content"]
        assert request["response_format"] == {"type": "json_object"}


def _files_with(root: Path, needle: bytes) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _files_with_vector(root: Path, vector: np.ndarray, n: int = 16, tol: float = 1e-5) -> list[str]:
    """Files holding these float32 values in a row (at any byte alignment)."""
    probe = vector[:n].astype("<f4")
    found = []
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        data = p.read_bytes().rstrip(b"\0")  # store files are preallocated: skip the empty tail
        for off in range(4):
            arr = np.frombuffer(data[off: off + (len(data) - off) // 4 * 4], dtype="<f4")
            with np.errstate(invalid="ignore"):
                starts = np.flatnonzero(np.abs(arr[: max(0, len(arr) - n)] - probe[0]) < tol)
            if any(np.allclose(arr[i:i + n], probe, atol=tol) for i in starts[:10000]):
                found.append(str(p.relative_to(root)))
                break
    return found


@needs_fsdd
@needs_faces
async def test_forget_leaves_no_trace_in_the_store_files(tmp_path: Path) -> None:
    from mcp_servers.persona import face_dlib, images

    marker = "Zyxwvut Quennell"
    utts = fsdd()
    clip = wav_b64(utts["lucas"][0])
    photo = FACES / "biden" / "biden_1.jpg"
    # The encoding the server stores for this photo, computed here by the same code (dlib is deterministic).
    face_vec = face_dlib.DlibFaces().faces(images.load(photo.read_bytes(), 40_000_000).rgb)[0].embedding
    home = tmp_path / "home"
    async with stdio_session("persona", server_env(home)) as s:
        keep = await new_user(s, "Keeper")
        await ok(s, "speaker_enroll", {"user_id": keep, "audio": wav_b64(utts["jackson"][0])})
        uid = await new_user(s, marker)
        await ok(s, "speaker_enroll", {"user_id": uid, "audio": clip})
        await ok(s, "face_enroll", {"user_id": uid, "image": file_b64(photo)})
        await ok(s, "profile_update", {"user_id": uid, "patches": [
            {"op": "add", "field": "preferences", "value": f"collects {marker} stamps"}]})
        await ok(s, "user_rename", {"user_id": uid, "name": marker + " Jr"})
        data = home / "persona"
        assert _files_with(data, marker.encode()), "the marker should be in the store before forgetting"
        assert _files_with_vector(data, face_vec), "the face encoding should be in the store before forgetting"
        voice_files = [f for f in _files_with(data, uid.encode()) if f.startswith("voice_")]
        assert voice_files, "the voiceprint (payload with the user id) should be in the store before forgetting"

        await ok(s, "user_forget", {"user_id": uid})
        assert _files_with(data, marker.encode()) == []
        assert _files_with(data, uid.encode()) == []
        assert _files_with_vector(data, face_vec) == []
        # The other user is intact.
        r = await ok(s, "speaker_identify", {"audio": wav_b64(utts["jackson"][3])})
        assert r["user_id"] == keep


async def test_http_user_scoped_token_sees_only_its_user(tmp_path: Path) -> None:

    import httpx

    args = ["serve", "persona", "--transport", "http"]
    with http_server(args, server_env(tmp_path, ALPHAAVATAR_TOKEN="owner-token")) as base:
        async with http_session(f"{base}/mcp", "owner-token") as s:
            ann, ben = await new_user(s, "Ann"), await new_user(s, "Ben")
            await ok(s, "profile_update", {"user_id": ben, "patches": [
                {"op": "add", "field": "goals", "value": "learn Welsh"}]})
    env = server_env(tmp_path, ALPHAAVATAR_TOKEN="owner-token", ALPHAAVATAR_USER_TOKENS=json.dumps({"ann-token": ann}))
    with http_server(args, env) as base:
        assert httpx.post(f"{base}/mcp", json={}).status_code == 401
        async with http_session(f"{base}/mcp", "ann-token") as s:
            assert (await ok(s, "profile_get", {"user_id": ann}))["name"] == "Ann"
            for tool, tool_args in (("profile_get", {"user_id": ben}), ("user_forget", {"user_id": ben}),
                                    ("user_create", {"name": "Eve", "user_id": "eve"})):
                r = await call(s, tool, tool_args)
                assert r.is_error and "scoped" in r.text, (tool, r.text)
            merge = await call(s, "user_merge", {"user_id": ben, "into_user_id": ann})
            assert merge.is_error and "Only the owner can call user_merge" in merge.text, merge.text
            again = await call(s, "user_create", {"name": "Eve"})  # the token's own user, which exists
            assert again.is_error and "exists already" in again.text, again.text
            assert [u["user_id"] for u in (await ok(s, "user_list", {}))["users"]] == [ann]
            found = await ok(s, "profile_search", {"query": "who learns Welsh"})
            assert [h["user_id"] for h in found["results"]] in ([], [ann])
        async with http_session(f"{base}/mcp", "owner-token") as s:
            assert (await ok(s, "user_list", {}))["total"] == 2


@needs_fsdd
async def test_user_token_is_the_same_person_on_every_server(tmp_path: Path) -> None:
    """A token scoped to 'alice' is persona's 'alice' as it is memory's: no admin step first."""
    clips = fsdd()["george"]
    env = server_env(tmp_path, ALPHAAVATAR_USER_TOKENS=json.dumps({"tokA": "alice", "tokB": "bob"}))
    with http_server(["up"], env) as base:
        async with http_session(f"{base}/persona/mcp", "tokA") as s:
            enrolled = await ok(s, "speaker_enroll", {"user_id": "alice", "audio": [wav_b64(c) for c in clips[:2]]})
            assert enrolled["user_id"] == "alice"
            await ok(s, "profile_update", {"user_id": "alice", "patches": [
                {"op": "set", "field": "identity.preferred_name", "value": "Al"}]})
            got = await ok(s, "profile_get", {"user_id": "alice"})
            assert got["user_id"] == "alice"
            heard = await ok(s, "speaker_identify", {"audio": wav_b64(clips[2])})
            assert heard["decision"] in ("known", "uncertain") and heard.get("created_user_id") is None
        async with http_session(f"{base}/persona/mcp", "tokB") as s:
            mine = await ok(s, "user_create", {"name": "Bob"})
            assert mine["user_id"] == "bob" and mine["name"] == "Bob"
            heard = await ok(s, "speaker_identify", {"audio": wav_b64(clips[2])})  # alice's voice
            assert heard["decision"] == "unknown" and heard["user_id"] is None and heard["created_user_id"] is None
            assert "alice" not in dumps(heard)
            for tool, args in (("profile_get", {"user_id": "alice"}), ("user_forget", {"user_id": "alice"})):
                r = await call(s, tool, args)
                assert r.is_error and "scoped to user 'bob'" in r.text, (tool, r.text)
        async with http_session(f"{base}/memory/mcp", "tokA") as s:
            await ok(s, "memory_add", {"content": "Alice plays the oboe"})
            assert (await ok(s, "memory_search", {"query": "oboe"}))["results"][0]["user_id"] == "alice"


async def test_profile_search_answers_user_ids_that_user_get_takes(tmp_path: Path) -> None:
    """A user created with an id of the caller's own ('alice') is found as 'alice', not as the store's
    point id derived from it."""
    async with stdio_session("persona", server_env(tmp_path)) as s:
        await ok(s, "user_create", {"name": "Alice", "user_id": "alice"})
        await ok(s, "profile_update", {"user_id": "alice", "patches": [
            {"op": "add", "field": "preferences", "value": "birdwatching at dawn"}]})
        found = (await ok(s, "profile_search", {"query": "birdwatching"}))["results"]
        assert [h["user_id"] for h in found] == ["alice"]
        assert (await ok(s, "user_get", {"user_id": found[0]["user_id"]}))["name"] == "Alice"
