"""Multi-frame voting: the reads of one vehicle's frames from one camera → one result per slot.

Each valid value scores the sum of its reads' confidences; the winner's confidence is its mean
confidence times its share of all the slot's scores, so that disagreeing frames lower it. Below
`min_confidence` the result is `low_confidence` and its value stays empty (the candidate is kept in
`raw`); a slot with only failed checks is voted character by character, and is `corrected` when
that consensus passes the check, else `check_failed`; a Hong Kong plate read only without its letters
stays `low_confidence` (its text in `raw`); a camera that read nothing is `unread`.

A vehicle may carry two containers (two 20 ft boxes on one chassis): container codes that both pass their check,
differ in DISTINCT_CHARS characters or more and are each read in at least two frames are two containers, each voted
over its own reads (slots `container`, `container_2`, … in the order the camera first saw them), not one code read two
ways. A misread of one character never passes the check; one of two that does, or a second code seen in one frame
only, is still voted against the code it competes with, as before.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from models.ocr import iso6346
from models.ocr.classify import CONTAINER, Read

DISTINCT_CHARS = 3
"""Two valid container codes this many characters apart or more are two containers (a check digit makes every single
misread fail; a double misread that passes is one in ten, a triple one that passes rarer still)."""


@dataclass(frozen=True)
class Voted:
    """One slot's result over a vehicle's frames; `frame` and `box` locate the evidence crop."""

    kind: str
    slot: str
    value: str
    raw: str
    confidence: float
    status: str  # read, corrected, low_confidence, check_failed, unread
    frames: int  # how many frames supported the value
    frame: int = -1
    box: tuple[int, int, int, int] = (0, 0, 0, 0)


def vote(kind: str, frames: list[list[Read]], min_confidence: float) -> list[Voted]:
    """One result per slot seen in the frames, or a single `unread` when no frame held a read."""
    by_slot: dict[str, list[tuple[int, Read]]] = defaultdict(list)
    for index, reads in enumerate(frames):
        for read in reads:
            by_slot[read.slot].append((index, read))
    if not by_slot:
        return [Voted(kind, kind, "", "", 0.0, "unread", 0)]
    if CONTAINER in by_slot:
        by_slot.update(_containers(by_slot.pop(CONTAINER)))
    return [_slot(kind, slot, reads, min_confidence) for slot, reads in sorted(by_slot.items())]


def _containers(reads: list[tuple[int, Read]]) -> dict[str, list[tuple[int, Read]]]:
    """The container slot's reads split by container: each code that passes its check, is read in two frames or more
    and differs from every code before it (by weight of reads) in DISTINCT_CHARS characters or more is a container
    of its own; every other read goes with the container whose code it is nearest (the first on a tie)."""
    weight: dict[str, float] = defaultdict(float)
    frames: dict[str, set[int]] = defaultdict(set)
    for index, read in reads:
        if read.value:
            weight[read.value] += read.confidence
            frames[read.value].add(index)
    codes: list[str] = []
    for code in sorted(weight, key=lambda c: -weight[c]):
        if not codes or (len(frames[code]) >= 2 and all(_apart(code, c) >= DISTINCT_CHARS for c in codes)):
            codes.append(code)
    if len(codes) < 2:
        return {CONTAINER: reads}
    groups: dict[str, list[tuple[int, Read]]] = {c: [] for c in codes}
    for index, read in reads:
        groups[min(codes, key=lambda c: _apart(read.value or read.raw, c))].append((index, read))
    first_seen = sorted(codes, key=lambda c: min(i for i, _ in groups[c]))
    return {CONTAINER if n == 0 else f"{CONTAINER}_{n + 1}": groups[c] for n, c in enumerate(first_seen)}


def _apart(a: str, b: str) -> int:
    """How many of two codes' characters differ (a length's difference counts as that many)."""
    return sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))


def _slot(kind: str, slot: str, reads: list[tuple[int, Read]], min_confidence: float) -> Voted:
    scores: dict[str, float] = defaultdict(float)
    for _, read in reads:
        scores[read.value] += read.confidence
    valid = sorted(((v, s) for v, s in scores.items() if v), key=lambda vs: -vs[1])
    if not valid:
        agreed = _consensus(slot, reads, min_confidence)
        if agreed is not None:
            return agreed
        raw, status = Counter((r.raw, r.status) for _, r in reads).most_common(1)[0][0]
        return Voted(kind, slot, "", raw, 0.0, status, 0)
    value, score = valid[0]
    support = [(i, r) for i, r in reads if r.value == value]
    share = score / max(sum(scores.values()), 1e-9)
    confidence = round(score / len(support) * share, 4)
    frame, best = max(support, key=lambda ir: ir[1].confidence)
    if confidence < min_confidence:
        return Voted(kind, slot, "", value, confidence, "low_confidence", len(support), frame, best.box)
    status = "corrected" if all(r.status == "corrected" for _, r in support) else "read"
    return Voted(kind, slot, value, best.raw, confidence, status, len(support), frame, best.box)


def _consensus(slot: str, reads: list[tuple[int, Read]], min_confidence: float) -> Voted | None:
    """Container codes that each failed their check, voted character by character: frames that got
    different characters wrong agree on the true code. Only a consensus that passes the check counts."""
    codes = [(iso6346.coerce(r.raw)[0], r.confidence) for _, r in reads if len(r.raw) == 11]
    if slot != CONTAINER or len(codes) < 2:
        return None
    chars, agreement = [], []
    for i in range(11):
        weights: dict[str, float] = defaultdict(float)
        for code, confidence in codes:
            weights[code[i]] += confidence
        char, weight = max(weights.items(), key=lambda cw: cw[1])
        chars.append(char)
        agreement.append(weight / sum(weights.values()))
    value = "".join(chars)
    if not iso6346.is_valid(value):
        return None
    confidence = round(min(agreement) * sum(c for _, c in codes) / len(codes), 4)
    frame, best = max(reads, key=lambda ir: ir[1].confidence)
    if confidence < min_confidence:
        return Voted(CONTAINER, slot, "", value, confidence, "low_confidence", len(codes), frame, best.box)
    return Voted(CONTAINER, slot, value, value, confidence, "corrected", len(codes), frame, best.box)
