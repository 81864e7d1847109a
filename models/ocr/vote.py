"""Multi-frame voting: the reads of one vehicle's frames from one camera → one result per slot.

Each valid value scores the sum of its reads' confidences; the winner's confidence is its mean
confidence times its share of all the slot's scores, so that disagreeing frames lower it. Below
`min_confidence` the result is `low_confidence` and its value stays empty (the candidate is kept in
`raw`); a slot with only failed checks is voted character by character, and is `corrected` when
that consensus passes the check, else `check_failed`; a Hong Kong plate read only without its letters
stays `low_confidence` (its text in `raw`); a camera that read nothing is `unread`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from models.ocr import iso6346
from models.ocr.classify import CONTAINER, Read


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
    return [_slot(kind, slot, reads, min_confidence) for slot, reads in sorted(by_slot.items())]


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
