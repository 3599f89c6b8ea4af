"""Who spoke when: speaker changes are found where the voice in the 1.6 s before a moment differs
from the voice in the 1.6 s after it (sliding-window embeddings), moved into the nearest pause;
the stretches between changes are embedded whole, labelled against enrolled users or clustered
with each other, and each resulting speaker is identified on all of their speech (by the caller).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from .audio import FRAME, SAMPLE_RATE

CHANGE = 0.25  # cosine distance between the windows before and after a moment that marks a change
SAME_VOICE = 0.75  # stretches of one voice are at least this similar (cosine)
MIN_SPEECH_RATIO = 0.5  # windows with less speech than this do not vote on changes
SNAP = 0.5  # seconds: a change moves to the middle of a pause this close
MIN_SEGMENT = 0.5  # seconds of speech; shorter stretches join a neighbour
MAX_GAP = 0.3  # seconds of silence bridged inside one speaker's turn


@dataclass
class Turn:
    start: float
    end: float
    label: str


def speech_ratio(keep: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    out = []
    for s in starts:
        frames = keep[s // FRAME: (s + length) // FRAME]
        out.append(float(frames.mean()) if len(frames) else 0.0)
    return np.array(out)


def change_points(vectors: np.ndarray, starts: np.ndarray, length: int, usable: np.ndarray,
                  voiced: np.ndarray) -> list[float]:
    """Seconds at which the speaker may change (candidates: `merge_alike` drops the false ones)."""
    if len(starts) < 2:
        return []
    hop = int(starts[1] - starts[0])
    k = max(1, round(length / hop))  # the window ending where window j starts
    dist = np.zeros(len(starts))
    for j in range(k, len(starts)):
        if usable[j] and usable[j - k]:
            dist[j] = 1.0 - float(vectors[j] @ vectors[j - k])
    radius = max(1, k // 2)
    cuts = []
    for j in range(k, len(starts)):
        if dist[j] >= CHANGE and dist[j] == dist[max(0, j - radius): j + radius + 1].max():
            cuts.append(_snap(starts[j] / SAMPLE_RATE, voiced))
    return sorted(set(cuts))


def _snap(t: float, voiced: np.ndarray) -> float:
    """The middle of the nearest pause within SNAP seconds of t (or t)."""
    keep = voiced
    frame_s = FRAME / SAMPLE_RATE
    lo, hi = max(0, int((t - SNAP) / frame_s)), min(len(keep), int((t + SNAP) / frame_s) + 1)
    best, best_d = t, None
    i = lo
    while i < hi:
        if not keep[i]:
            j = i
            while j < len(keep) and not keep[j]:
                j += 1
            mid = (i + j) / 2 * frame_s
            if best_d is None or abs(mid - t) < best_d:
                best, best_d = mid, abs(mid - t)
            i = j
        else:
            i += 1
    return round(best, 3)


def stretches(keep: np.ndarray, cuts: Sequence[float]) -> list[list[tuple[float, float]]]:
    """Per interval between cuts, its runs of speech (start, end) in seconds; empty intervals dropped."""
    frame_s = FRAME / SAMPLE_RATE
    bounds = [0.0, *cuts, len(keep) * frame_s]
    out = []
    for a, b in itertools.pairwise(bounds):
        runs: list[tuple[float, float]] = []
        for f in np.flatnonzero(keep[int(a / frame_s): int(b / frame_s)]) + int(a / frame_s):
            t = f * frame_s
            if runs and t - runs[-1][1] <= MAX_GAP:
                runs[-1] = (runs[-1][0], t + frame_s)
            else:
                runs.append((t, t + frame_s))
        if runs:
            out.append(runs)
    return out


def merge_alike(parts: list[list[tuple[float, float]]], vectors: list[np.ndarray],
                embed: Callable[[list[tuple[float, float]]], np.ndarray]) -> tuple[list[list[tuple[float, float]]], list[np.ndarray]]:
    """Join neighbouring stretches whose voices are alike (a change detected inside one turn), most
    alike first, re-embedding each joined stretch."""
    parts, vectors = list(parts), list(vectors)
    while len(parts) > 1:
        sims = [float(vectors[i] @ vectors[i + 1]) for i in range(len(parts) - 1)]
        i = int(np.argmax(sims))
        if sims[i] < SAME_VOICE:
            break
        parts[i: i + 2] = [parts[i] + parts[i + 1]]
        vectors[i: i + 2] = [embed(parts[i])]
    return parts, vectors


def label_stretches(vectors: np.ndarray, known: Sequence[str | None], seconds: Sequence[float]) -> list[str]:
    """'u:<user>' for stretches recognised as an enrolled user; the others clustered ('c:<n>'); stretches
    shorter than MIN_SEGMENT take the label of their longer neighbour."""
    labels: list[str | None] = [f"u:{u}" if u else None for u in known]
    rest = [i for i, lab in enumerate(labels) if lab is None and seconds[i] >= MIN_SEGMENT]
    if len(rest) == 1:
        labels[rest[0]] = "c:1"
    elif rest:
        tree = linkage(vectors[rest], method="average", metric="cosine")
        for i, c in zip(rest, fcluster(tree, t=1 - SAME_VOICE, criterion="distance"), strict=True):
            labels[i] = f"c:{c}"
    for i in range(len(labels)):
        if labels[i] is None:
            near = [j for j in (i - 1, i + 1) if 0 <= j < len(labels) and labels[j] is not None]
            labels[i] = labels[max(near, key=lambda j: seconds[j])] if near else "c:0"
    return [lab or "c:0" for lab in labels]


def join(items: list[Turn]) -> list[Turn]:
    out: list[Turn] = []
    for t in items:
        if out and out[-1].label == t.label and t.start - out[-1].end <= MAX_GAP:
            out[-1].end = max(out[-1].end, t.end)
        else:
            out.append(Turn(t.start, t.end, t.label))
    return out


def same_speakers(order: Sequence[str], known: Mapping[str, str | None],
                  closest: Mapping[str, str | None]) -> dict[str, str]:
    """Per label, the label it is one speaker with. `known`: the user a label was identified as;
    `closest`: for an 'uncertain' label, its best candidate. Labels known as the same person are one
    speaker; so is an uncertain label whose best candidate is a person known elsewhere in the
    recording (a turn split in two)."""
    first: dict[str, str] = {}
    for lab in order:
        if (user := known[lab]) is not None:
            first.setdefault(user, lab)
    out = {}
    for lab in order:
        user, near = known[lab], closest[lab]
        out[lab] = first[user] if user is not None else first.get(near, lab) if near is not None else lab
    return out


def relabel(turns: list[Turn], same: Mapping[str, str]) -> tuple[list[Turn], dict[str, str]]:
    """The turns under the labels `same` gives them (joined again), and a tag per label: S1, S2, …
    in order of first speech."""
    turns = join([Turn(t.start, t.end, same[t.label]) for t in turns])
    return turns, {lab: f"S{i + 1}" for i, lab in enumerate(dict.fromkeys(t.label for t in turns))}
