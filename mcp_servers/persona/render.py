"""Short text renderings of persona's results, for hosts and people that read text."""

from __future__ import annotations

from . import models
from .profile import Profile


def _match(m: models.Match, what: str) -> str:
    if m.decision == "known":
        return f"{what}: {m.name} ({m.user_id}), score {m.score} ≥ {m.threshold}"
    best = f"; closest {m.candidates[0].name} at {m.candidates[0].score}" if m.candidates else ""
    return f"{what}: {m.decision} (needs ≥ {m.threshold}{best})"


def speaker_enroll(r: models.SpeakerEnrollResult) -> str:
    return f"Enrolled {r.added} clip(s) for {r.user_id}: voiceprint now {r.voice_samples}."


def voice_match(r: models.VoiceMatch) -> str:
    extra = f"; new provisional user {r.created_user_id}" if r.created_user_id else ""
    return _match(r, f"voice ({r.speech_seconds} s)") + extra


def verify(r: models.VerifyResult) -> str:
    return f"verify {r.claimed_user_id}: {r.decision} (score {r.score}, needs ≥ {r.threshold})"


def segments(r: models.SegmentResult) -> str:
    lines = [f"{s.start:.2f}-{s.end:.2f} {s.speaker} {s.user_id or s.decision}" for s in r.segments[:50]]
    return "\n".join(lines) or "No speech found."


def reset(r: models.ResetResult) -> str:
    return f"Removed {r.removed} voice sample(s) of {r.user_id}; left {r.voice_samples}."


def face_enroll(r: models.FaceEnrollResult) -> str:
    return f"Enrolled {r.added} face(s) for {r.user_id}; {r.face_samples} in all."


def faces(r: models.FaceResult) -> str:
    return "; ".join(_match(f, f"face {i + 1}") for i, f in enumerate(r.faces)) or "No face found."


def identified(r: models.IdentifyResult) -> str:
    return f"{r.decision}: {r.name or r.user_id or '-'} ({r.reason})"


def user(u: models.User) -> str:
    flag = " (provisional)" if u.provisional else ""
    return f"{u.name}{flag} {u.user_id}: voice {u.voice_samples or 'none'}, faces {u.face_samples}, facts {u.facts}"


def users(r: models.UserList) -> str:
    return "\n".join(user(u) for u in r.users) or "No users."


def merged(r: models.MergeResult) -> str:
    return (f"Merged {r.merged_user_id} into {r.user_id}: {r.voice_samples_moved} voice, "
            f"{r.face_samples_moved} face samples, {r.facts_added} facts.")


def forgot(r: models.ForgetResult) -> str:
    return (f"Erased {r.user_id}: {r.voice_samples} voice, {r.face_samples} face samples, "
            f"{r.history_entries} history entries.")


def profile(p: Profile) -> str:
    lines = [f"{p.name} ({p.user_id})"]
    data = p.model_dump(exclude={"user_id", "name", "provisional"}, exclude_none=True)
    for section, value in data.items():
        facts = value.items() if isinstance(value, dict) and "value" not in value else [(section, value)]
        for key, fact in facts:
            for f in fact if isinstance(fact, list) else [fact]:
                if isinstance(f, dict) and "value" in f:
                    lines.append(f"- {key}: {f['value']} [{f['source']}, {f['confidence']}]")
    return "\n".join(lines)


def updated(r: models.ProfileUpdateResult) -> str:
    return "\n".join(f"{c.op} {c.field}: {c.old} -> {c.new}" for c in r.changes) or "Nothing changed."


def proposals(r: models.ExtractResult) -> str:
    lines = [f"{'ok' if p.valid else 'refused'} {p.patch.op} {p.patch.field}: {p.patch.value}"
             + (f" ({p.reason})" if p.reason else "") for p in r.proposals]
    return "\n".join(lines) or "Nothing to add."


def history(r: models.HistoryResult) -> str:
    return "\n".join(f"{c.at} {c.op} {c.field}: {c.old} -> {c.new} [{c.source}]" for c in r.changes) or "No changes."


def found(r: models.SearchResult) -> str:
    return "\n".join(f"{h.name} ({h.user_id}): {'; '.join(h.matches) or '-'}" for h in r.results) or "No user matches."
