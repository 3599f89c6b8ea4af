"""character_bridge without MCP: tags on chunked streams, lip-sync on real speech, hub policy, schema."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from character_bridge import lipsync
from character_bridge.hub import Hub
from character_bridge.protocol import (
    EMOTIONS,
    ExpressionEvent,
    GazeEvent,
    ParamEvent,
    StateEvent,
    parse_event,
    schema,
)
from character_bridge.speech import plan_speech
from character_bridge.tags import TagParser, canonical_emotion, strip_tags
from tests.speech import wav_bytes

STREAM = ('Oh [happy] hello there! <|ACT {"emotion":"surprised"}|>Did you see that? [joyful]Nice. '
          '[flabbergasted-xyz] See [1] and a < b. <|ACT:{"emotion":{"name":"sad","intensity":0.4}}|>Bye.')
CLEAN = "Oh  hello there! Did you see that? Nice.  See [1] and a < b. Bye."


def _feed(chunks: list[str]) -> tuple[str, list[tuple[str, int]]]:
    parser = TagParser()
    text, tags = "", []
    for chunk in [*chunks, None]:
        parsed = parser.feed(chunk) if chunk is not None else parser.flush()
        text += parsed.text
        tags += [(t.emotion, t.offset) for t in parsed.tags]
    return text, tags


def test_tags_whole_text() -> None:
    parsed = strip_tags(STREAM)
    assert parsed.text == CLEAN
    assert [(t.emotion, parsed.text[t.offset:t.offset + 6]) for t in parsed.tags] == [
        ("happy", " hello"), ("surprised", "Did yo"), ("happy", "Nice. "), ("sad", "Bye.")]
    assert parsed.tags[-1].intensity == 0.4
    assert parsed.dropped == ["[flabbergasted-xyz]"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 64])
def test_tags_split_across_chunks(size: int) -> None:
    whole = _feed([STREAM])
    chunked = _feed([STREAM[i:i + size] for i in range(0, len(STREAM), size)])
    assert chunked == whole
    assert whole[0] == CLEAN


def test_tag_text_is_released_as_soon_as_it_cannot_be_a_tag() -> None:
    parser = TagParser()
    assert parser.feed("Hello [hap").text == "Hello "  # held back: may be a tag
    assert parser.feed("py] world <").text == " world "
    assert parser.feed("3 you").text == "<3 you"  # '<3' is not '<|ACT'
    assert parser.feed(" [this is not a tag because it is far too long to be one]").text.startswith(" [this")


def test_unknown_emotions_map_or_drop() -> None:
    assert canonical_emotion("Thinking") == "think"
    assert canonical_emotion("hapy") == "happy"  # close spelling
    assert canonical_emotion("embarrassed") == "awkward"
    assert canonical_emotion("xyzzy") is None
    assert all(canonical_emotion(e) == e for e in EMOTIONS)


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """espeak-ng speech: 'Hello world, how are you today?' · 1.5 s of silence · 'I am fine, thank you.'"""
    out = tmp_path_factory.mktemp("speech")
    parts = []
    for i, text in enumerate(["Hello world, how are you today?", "I am fine, thank you."]):
        path = out / f"{i}.wav"
        path.write_bytes(wav_bytes(text))
        samples, rate = sf.read(path, dtype="float32")
        parts.append(samples)
    gap = np.zeros(int(1.5 * rate), dtype=np.float32)
    audio = np.concatenate([parts[0], gap, parts[1]])
    t0 = len(parts[0]) / rate
    silence = (t0 + 0.2, t0 + 1.3)  # well inside the gap (espeak ends each part with a short silence)
    return audio, rate, [silence]


def test_envelope_tracks_voiced_parts_and_closes_in_silence(speech_wav) -> None:
    audio, rate, silences = speech_wav
    mouth = lipsync.envelope(audio, rate)
    assert len(mouth) == pytest.approx(len(audio) / rate * 50, abs=1)
    assert max(mouth) == 1.0
    (a, b), = silences
    gap = mouth[int(a * 50):int(b * 50)]
    assert max(gap) < 0.02
    first = mouth[5:int((a - 0.4) * 50)]
    assert np.mean(first) > 0.25 and sum(v > 0.3 for v in first) > 0.5 * len(first)
    # frames where the audio itself is loud have an open mouth
    frames = audio[: len(audio) // (rate // 50) * (rate // 50)].reshape(-1, rate // 50)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    loud = rms > 0.3 * rms.max()
    assert np.mean(np.array(mouth[: len(loud)])[loud] > 0.2) > 0.9


@pytest.mark.parametrize("target", [8000, 16000, 44100, 11025])
def test_envelope_any_rate_int16_streaming_matches_whole(speech_wav, target: int) -> None:
    audio, rate, _ = speech_wav
    resampled = soxr.resample(audio, rate, target).astype(np.float32)
    pcm16 = (np.clip(resampled, -1, 1) * 32767).astype("<i2")
    env = lipsync.MouthEnvelope(target)
    streamed: list[float] = []
    data = pcm16.tobytes()
    for i in range(0, len(data), 1234):  # odd chunk size: frames straddle chunks
        streamed += env.push(data[i:i + 1234], dtype="int16")
    streamed += env.flush()
    whole = lipsync.MouthEnvelope(target).push(resampled, dtype="float32")
    assert len(streamed) == pytest.approx(len(resampled) / target * 50, abs=1)
    assert np.allclose(streamed[: len(whole)], whole, atol=0.02)


def test_stereo_and_malformed_audio(tmp_path: Path) -> None:
    stereo = np.stack([np.sin(np.arange(16000) / 5), np.zeros(16000)], axis=1).astype(np.float32)
    path = tmp_path / "s.wav"
    sf.write(path, stereo, 16000)
    mono, rate = lipsync.decode_audio(path.read_bytes())
    assert rate == 16000 and mono.ndim == 1 and len(mono) == 16000
    with pytest.raises(lipsync.AudioError, match="could not decode"):
        lipsync.decode_audio(b"RIFF\x00\x00\x00\x00WAVEgarbage")
    with pytest.raises(lipsync.AudioError, match="limit"):
        lipsync.decode_audio(path.read_bytes(), max_seconds=0.5)
    with pytest.raises(lipsync.AudioError):
        lipsync.MouthEnvelope(10)


# Recorded from the `espeak-ng -q -x --sep=_ -v en-us --stdin` command (1.51, Debian), which
# lipsync used before the bundled library: the library gives the same phonemes.
ESPEAK_COMMAND_PHONEMES = {
    "Hello world, how are you today?":
        "h @ l oU | w 3: l d | - | h aU | A@ | j u: | t @ d eI | -",
    "The quick brown fox jumps over the lazy dog.":
        "D @2 | k w I k | b r aU n | f 0 k s | dZ V m p s | oU v 3 | D @2 | l eI z i | d 0 g | -",
    "Thinking... hmm, that's an interesting question.\nA second line here.":
        "T I N k I N | - | h @ m | - | D a t s | a# n | I n t r E s t I N | k w E s tS @ n | - | a# | "
        "s E k @ n d | l aI n | h i@3 | -",
}


@pytest.mark.parametrize("text", list(ESPEAK_COMMAND_PHONEMES))
def test_phonemes_match_the_espeak_command(text: str) -> None:
    words = lipsync.phonemes(text)
    assert " | ".join(" ".join(w) or "-" for w in words) == ESPEAK_COMMAND_PHONEMES[text]
    cues = lipsync.visemes(text, 2000, 100)
    assert cues[0].t_ms == 100 and cues[-1].t_ms + cues[-1].dur_ms == 2100


def test_visemes_from_espeak_are_aligned_to_the_audio(speech_wav) -> None:
    audio, rate, _ = speech_wav
    plan = plan_speech("[happy] Hello world, how are you today? [think] I am fine, thank you.", (audio, rate))
    speech = plan.speech
    assert plan.source == "audio" and speech.text.startswith("Hello world")
    start, end = lipsync.voiced_span(speech.mouth)
    cues = speech.visemes
    assert cues[0].t_ms == start and abs(cues[-1].t_ms + cues[-1].dur_ms - end) <= 2
    assert all(b.t_ms >= a.t_ms for a, b in itertools.pairwise(cues))
    assert {"PP", "oh", "aa", "sil"} <= {c.viseme for c in cues}  # m (am), o (hello), a (how), pause
    assert [t.event.emotion for t in plan.expressions] == ["happy", "think"]
    assert plan.expressions[0].t_ms <= 100 < plan.expressions[1].t_ms < speech.duration_ms


def test_speech_without_audio_estimates_timing() -> None:
    plan = plan_speech("Mama made a map.")
    assert plan.source == "text" and plan.speech.duration_ms > 500
    assert len(plan.speech.mouth) == pytest.approx(plan.speech.duration_ms / 20, abs=1)
    assert plan.speech.visemes[0].viseme == "PP"  # m


def test_schema_covers_every_kind_and_round_trips() -> None:
    out = schema()
    kinds = {d["properties"]["kind"]["const"] for d in out["$defs"].values() if "kind" in d.get("properties", {})}
    assert kinds == {"expression", "speech", "motion", "gaze", "param", "state", "interrupt"}
    ev = parse_event(ExpressionEvent(emotion="sad", seq=3).model_dump_json())
    assert isinstance(ev, ExpressionEvent) and ev.emotion == "sad"


async def test_hub_coalesces_param_never_drops_reliable_and_snapshots() -> None:
    hub = Hub(queue_size=50)
    slow = hub.subscribe("slow")
    hub.publish(StateEvent(state="listening"))
    for i in range(1000):
        hub.publish(ParamEvent(name="mouth_open", value=i / 1000))
        hub.publish(GazeEvent(x=0.001 * (i % 100), y=0))
    hub.publish(ExpressionEvent(emotion="happy"))
    slots = await slow.take()
    kinds = [s.event.kind for s in slots]
    assert kinds == ["state", "param", "gaze", "expression"]  # order kept, frames coalesced in place
    assert slots[1].event.value == 0.999
    assert slow.coalesced == 1998 and slow.sent == 4
    for _ in range(60):  # more reliable events than the queue holds: the subscriber is cut off, not fed gaps
        hub.publish(ExpressionEvent(emotion="sad"))
    assert slow.overflowed and slow.queued == 50
    late = hub.subscribe("late")
    first = [s.event for s in await late.take()]
    assert [e.kind for e in first] == ["state", "param", "gaze", "expression"]
    assert first[-1].emotion == "sad" and first[1].value == 0.999
