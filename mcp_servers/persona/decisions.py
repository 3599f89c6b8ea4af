"""Known / unknown / uncertain from similarity scores, with thresholds that depend on how much speech
there is.

The resemblyzer curve is calibrated on the FSDD dev split (`bench/speaker_id.py --calibration`,
docs/benchmarks.md): impostor scores do not grow as clips shorten while genuine scores fall, so
'known' sits just above the impostor tail at every length, with a safety step for short clips,
and the 'uncertain' band widens as clips shorten (short clips answer 'uncertain' rather than a
wrong name). The values are round numbers between
the two tails, not fitted to the last digit: the held-back evaluation uses other speakers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["known", "unknown", "uncertain"]


@dataclass(frozen=True)
class Thresholds:
    """'known' at or above `known` with at least `margin` over the next user; 'unknown' below
    `unknown`; 'uncertain' in between (or when two users are too close to tell apart)."""

    known: float
    unknown: float
    margin: float

    def shifted(self, known: float | None) -> Thresholds:
        """These thresholds with 'known' moved to `known` (the band below it kept)."""
        if known is None:
            return self
        return Thresholds(known, known - (self.known - self.unknown), self.margin)


@dataclass(frozen=True)
class LengthCurve:
    """Thresholds by seconds of speech, interpolated linearly between points, flat beyond the ends."""

    points: tuple[tuple[float, Thresholds], ...]

    def at(self, seconds: float) -> Thresholds:
        xs = [p[0] for p in self.points]

        def interp(attr: str) -> float:
            return round(float(np.interp(seconds, xs, [getattr(p[1], attr) for p in self.points])), 4)

        return Thresholds(interp("known"), interp("unknown"), interp("margin"))

    def shifted(self, known_long: float | None) -> LengthCurve:
        """The same curve moved so that its long-speech 'known' threshold is `known_long`."""
        if known_long is None:
            return self
        delta = known_long - self.points[-1][1].known
        return LengthCurve(tuple((s, Thresholds(t.known + delta, t.unknown + delta, t.margin)) for s, t in self.points))


# resemblyzer (3 partials a second, trimmed speech), calibrated as the module docstring says.
RESEMBLYZER = LengthCurve((
    (0.5, Thresholds(known=0.80, unknown=0.70, margin=0.03)),
    (1.0, Thresholds(known=0.78, unknown=0.72, margin=0.03)),
    (1.5, Thresholds(known=0.765, unknown=0.73, margin=0.03)),
    (2.0, Thresholds(known=0.76, unknown=0.73, margin=0.03)),
))

# wespeaker-format ONNX models: not calibrated here (no weights offline). Cosine scores of these
# models centre near 0 for different speakers; a starting point to re-calibrate with
# `bench/speaker_id.py` (it prints the EER threshold) and ALPHAAVATAR_PERSONA_VOICE_THRESHOLD.
WESPEAKER = LengthCurve((
    (0.5, Thresholds(known=0.65, unknown=0.40, margin=0.05)),
    (1.0, Thresholds(known=0.60, unknown=0.40, margin=0.05)),
    (2.0, Thresholds(known=0.50, unknown=0.35, margin=0.05)),
))

# dlib's 128-d descriptors (norm ≈ 1.39): its documented same-person rule, Euclidean distance < 0.6,
# is cosine > 0.907; 'known' is a little stricter (distance ≈ 0.55). Dev faces: same person 0.95–0.999,
# different people 0.79–0.83.
DLIB_FACE = Thresholds(known=0.92, unknown=0.88, margin=0.02)

# insightface buffalo_l (ArcFace w600k_r50, 512-d): the commonly used cosine operating points.
INSIGHTFACE_FACE = Thresholds(known=0.40, unknown=0.28, margin=0.05)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    user_id: str | None
    score: float | None
    margin: float | None
    thresholds: Thresholds


def decide(ranked: Sequence[tuple[str, float]], th: Thresholds) -> Decision:
    """Decide from (user_id, score) pairs, best first. Only 'known' names a user; the candidates
    say who came close otherwise."""
    if not ranked:
        return Decision("unknown", None, None, None, th)
    user, score = ranked[0]
    margin = round(score - ranked[1][1], 4) if len(ranked) > 1 else None
    score = round(score, 4)
    if score < th.unknown:
        return Decision("unknown", None, score, margin, th)
    if score >= th.known and (margin is None or margin >= th.margin):
        return Decision("known", user, score, margin, th)
    return Decision("uncertain", None, score, margin, th)


def normalised(score: float, th: Thresholds) -> float:
    """A score on a common scale: 0 at the 'unknown' threshold, 1 at the 'known' one."""
    return (score - th.unknown) / max(th.known - th.unknown, 1e-6)


def fuse(voice: tuple[Decision, list[tuple[str, float]], set[str]] | None,
         face: tuple[Decision, list[tuple[str, float]], set[str]] | None) -> tuple[Decision, str]:
    """One decision from voice and face: (decision, ranked candidates, users enrolled in that modality)
    each. Scores are put on a common scale (1.0 = 'known' threshold) and averaged per user; a
    modality that cannot judge a user (nothing enrolled for them) does not vote against them."""
    parts = [p for p in (voice, face) if p is not None]
    if len(parts) == 1:
        return parts[0][0], "one modality"
    (dv, rv, ev), (df, rf, ef) = voice, face  # type: ignore[misc]
    scores: dict[str, list[float]] = {}
    for d, ranked in ((dv, rv), (df, rf)):
        for user, s in ranked:
            scores.setdefault(user, []).append(normalised(s, d.thresholds))
    fused = sorted(((u, sum(v) / len(v)) for u, v in scores.items()), key=lambda kv: kv[1], reverse=True)
    top_score = fused[0][1] if fused else None
    margin = round(fused[0][1] - fused[1][1], 4) if len(fused) > 1 else None
    unit_th = Thresholds(known=1.0, unknown=0.0, margin=0.0)

    def out(verdict: Verdict, user: str | None, why: str) -> tuple[Decision, str]:
        score = round(top_score, 4) if top_score is not None else None
        return Decision(verdict, user, score, margin, unit_th), why

    if dv.verdict == "known" and df.verdict == "known":
        if dv.user_id == df.user_id:
            return out("known", dv.user_id, "voice and face agree")
        return out("uncertain", None, "voice and face name different people")
    for d, other, other_ranked, other_enrolled in ((dv, df, rf, ef), (df, dv, rv, ev)):
        if d.verdict != "known":
            continue
        if d.user_id not in other_enrolled:
            return out("known", d.user_id, "one modality knows them; the other has nothing enrolled for them")
        other_score = dict(other_ranked).get(d.user_id)
        if other_score is not None and other_score >= other.thresholds.unknown:
            return out("known", d.user_id, "one modality knows them; the other does not contradict")
        return out("uncertain", None, "one modality knows them; the other says it is someone else")
    if dv.verdict == df.verdict == "unknown":
        return out("unknown", None, "neither voice nor face is known")
    rv_top = rv[0][0] if rv else None
    rf_top = rf[0][0] if rf else None
    if dv.verdict == df.verdict == "uncertain" and rv_top is not None and rv_top == rf_top:
        return out("known", rv_top, "voice and face are each unsure but point to the same person")
    return out("uncertain", None, "not enough evidence either way")
