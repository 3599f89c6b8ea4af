"""Who spoke when: sliding-window voice embeddings, labelled against enrolled voices, the rest
clustered, smoothed over time and cut into segments. Each resulting speaker is then identified on
all of their speech at once (more speech, surer answer), by the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from .audio import FRAME, SAMPLE_RATE

SAME_VOICE = 0.72  # windows of one voice are closer than this (cosine); dev-split impostor median is 0.68
MIN_SPEECH_RATIO = 0.5  # windows with less speech than this are not labelled
MIN_SEGMENT = 0.4  # seconds; shorter runs join a neighbour
MAX_GAP = 0.3  # seconds of silence bridged inside one speaker's turn


@dataclass
class Turn:
    start: float
    end: float
    label: str


def _mode_filter(labels: list[str | None], radius: int = 2) -> list[str | None]:
    out: list[str | None] = []
    for i, label in enumerate(labels):
        if label is None:
            out.append(None)
            continue
        votes = Counter(x for x in labels[max(0, i - radius): i + radius + 1] if x is not None)
        best, n = votes.most_common(1)[0]
        out.append(best if n > votes[label] else label)
    return out


def label_windows(vectors: np.ndarray, ranked: Sequence[Sequence[tuple[str, float]]], usable: np.ndarray,
                  accept: float) -> list[str | None]:
    """A label per window: 'u:<user id>' when an enrolled voice scores at least `accept` (and beats the
    runner-up), else 'c:<n>' from clustering those windows together; None for unusable windows."""
    labels: list[str | None] = [None] * len(vectors)
    rest = []
    for i, cands in enumerate(ranked):
        if not usable[i]:
            continue
        if cands and cands[0][1] >= accept and (len(cands) < 2 or cands[0][1] > cands[1][1]):
            labels[i] = f"u:{cands[0][0]}"
        else:
            rest.append(i)
    if len(rest) == 1:
        labels[rest[0]] = "c:1"
    elif rest:
        tree = linkage(vectors[rest], method="average", metric="cosine")
        for i, c in zip(rest, fcluster(tree, t=1 - SAME_VOICE, criterion="distance"), strict=True):
            labels[i] = f"c:{c}"
    return _mode_filter(labels)


def turns(labels: Sequence[str | None], starts: np.ndarray, length: int, keep: np.ndarray) -> list[Turn]:
    """Speech frames take the label of the window centred nearest to them; runs become turns."""
    labelled = [(s + length / 2, lab) for s, lab in zip(starts, labels, strict=True) if lab is not None]
    if not labelled:
        return []
    centres = np.array([c for c, _ in labelled])
    frame_s = FRAME / SAMPLE_RATE
    out: list[Turn] = []
    for f in np.flatnonzero(keep):
        t = (f + 0.5) * FRAME
        label = labelled[int(np.argmin(np.abs(centres - t)))][1]
        start = f * frame_s
        if out and out[-1].label == label and start - out[-1].end <= MAX_GAP:
            out[-1].end = start + frame_s
        else:
            out.append(Turn(start, start + frame_s, label))
    return merge_short(out)


def merge_short(items: list[Turn]) -> list[Turn]:
    """Give a turn shorter than MIN_SEGMENT to the longer neighbour it touches (an isolated short
    turn stays: a lone 'yes' is speech too)."""
    items = [Turn(t.start, t.end, t.label) for t in items]
    changed = True
    while changed:
        changed = False
        for i, t in enumerate(items):
            if t.end - t.start >= MIN_SEGMENT:
                continue
            near = [j for j in (i - 1, i + 1) if 0 <= j < len(items) and items[j].label != t.label
                    and max(items[j].start - t.end, t.start - items[j].end) <= MAX_GAP]
            if near:
                t.label = items[max(near, key=lambda k: items[k].end - items[k].start)].label
                items = join(items)
                changed = True
                break
    return items


def join(items: list[Turn]) -> list[Turn]:
    out: list[Turn] = []
    for t in items:
        if out and out[-1].label == t.label and t.start - out[-1].end <= MAX_GAP:
            out[-1].end = max(out[-1].end, t.end)
        else:
            out.append(Turn(t.start, t.end, t.label))
    return out
