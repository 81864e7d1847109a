"""Identity fusion per item (pure): everything read between the item's entry and exit belongs to it.

Reads of one identity (same kind and value, from several frames or readers) become one, keeping the
highest confidence, every check and the latest seal state. Conflicting reads are flagged on each
identity involved (`conflict`: one sentence naming the other reads; `conflicts`: the same as a code with
its values, for the screens to say in their language), never hidden or resolved by dropping one:

    plate      two different plates of the same jurisdiction (a cross-boundary vehicle carries one
               Hong Kong plate and one mainland plate: those two do not conflict)
    container  a code that fails its ISO 6346 check digit (checks["iso6346"] says ok / bad_check_digit /
               bad_format)
    rfid_epc   two EPCs for one TID (checks["tid"]): the tag was rewritten, or its TID cloned

A camera that read nothing (`value` empty, status unread) conflicts with no read: it is recorded as
unread. Reads without a value are kept per camera and failure, so that a camera that saw a code it
could not read (check_failed, low_confidence) is never hidden behind another camera's unread. A
seal's state is not a conflict between reads: it stays on the identity (`seal`) and edge.seals
decides what it means for the verdict.

The jurisdiction of a plate is its `checks["jurisdiction"]` when the recogniser set it; else a plate
that starts with a Chinese character (a province, e.g. 粤) is "CN" and any other is "HK".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from central_sync.schema import ConflictCode, ConflictNote, Identity
from models.ocr.iso6346 import CODE as ISO6346, check_digit

ISO6346_RESULTS = ("ok", "bad_format", "bad_check_digit")
"""What `checks["iso6346"]` can say (the screen names each)."""
JURISDICTIONS = ("HK", "CN")
"""What `checks["jurisdiction"]` can say."""

TAG_HOLD_S = 300.0
"""Seconds a reader's tag recorded on an item is remembered as that item's after it left the field and the item's
record was written, by default (`[tags] hold_s`): read again meanwhile during another item (the vehicle ahead still
at the barrier or just past the exit, back in the antenna's field; or the same vehicle back after a U-turn), it joins
that item flagged `tag_reread`, never silently. Past it, the tag joins as any tag does (a later pass of the vehicle)."""
TAG_HOLD_S_RANGE = (30.0, 3600.0)
MAX_HELD_TAGS = 10_000
"""Recorded tags remembered at most (the oldest let go first): a device answering as thousands of tags grows no more."""

Conflict = tuple[str, ConflictNote]
"""One conflict: its English sentence (for `conflict`) and its code with the values it names (for `conflicts`)."""


def container_check(value: str) -> str:
    """"ok", "bad_format" (not 3 letters + U/J/Z + 7 digits) or "bad_check_digit"."""
    code = value.replace(" ", "").upper()
    if not ISO6346.match(code):
        return "bad_format"
    return "ok" if check_digit(code[:10]) == int(code[10]) else "bad_check_digit"


def jurisdiction(plate: Identity) -> str:
    """Where a plate was issued: as recognised, else "CN" for a province character first, else "HK"."""
    if "jurisdiction" in plate.checks:
        return plate.checks["jurisdiction"]
    return "CN" if plate.value and "\u4e00" <= plate.value[0] <= "\u9fff" else "HK"


def fuse(identities: Iterable[Identity]) -> list[Identity]:
    """The item's identities, one per (kind, value) in first-read order (one per camera and failure for the reads
    without a value), with conflicts flagged."""
    merged = _merge(identities)
    flags: dict[tuple[str, str], list[Conflict]] = defaultdict(list)
    for ident in merged:
        if ident.kind == "container" and ident.value:  # an unread code is recorded as unread, not as a bad code
            _flag_container(ident, flags)
    _flag_groups([i for i in merged if i.kind == "plate" and i.value], jurisdiction, "plates {values} of jurisdiction {key} "
                 "were read on one vehicle", ("plates_one_jurisdiction", "plates", "jurisdiction"), flags)
    _flag_groups([i for i in merged if i.kind == "rfid_epc" and "tid" in i.checks], lambda i: i.checks["tid"],
                 "EPCs {values} were read from the one tag TID {key}", ("epcs_one_tid", "epcs", "tid"), flags)
    return [with_conflicts(_checked(i), flags.get((i.kind, i.value), [])) for i in merged]


def conflicts(identities: Sequence[Identity]) -> list[str]:
    """Every conflict sentence on the record's identities (for the screen and the log)."""
    return sorted({i.conflict for i in identities if i.conflict})


def unidentified_container(identities: Sequence[Identity], container_item: bool) -> str | None:
    """Why a container on the item is not identified (one sentence per code), or None: a code that fails its
    ISO 6346 check, a camera that saw a code it could not read (check_failed, low_confidence) and, on a
    container item (`container_item`) where no code was read, a camera that saw none. A vehicle's camera that
    saw no code does not count: a vehicle may carry no container."""
    codes = [i for i in identities if i.kind == "container"]
    read = any(i.value and container_check(i.value) == "ok" for i in codes)
    found = []
    for ident in codes:
        seen = ident.raw or "?"
        if ident.value and container_check(ident.value) != "ok":
            found.append(f"container code {ident.value} fails its ISO 6346 check")
        elif not ident.value and ident.status in ("check_failed", "low_confidence"):
            found.append(f"camera {ident.source} saw container code {seen} but could not read it ({ident.status})")
        elif not ident.value and container_item and not read:
            found.append(f"camera {ident.source} read no container code")
    return "; ".join(found) or None


def _merge(identities: Iterable[Identity]) -> list[Identity]:
    """One identity per (kind, value): highest confidence, union of checks, the latest read's seal state. Reads
    without a value merge only with the same camera's same failure (source, status and raw): one camera's failed
    read (check_failed MSKU1234560) is never hidden behind another's `unread`."""
    out: dict[tuple[str, ...], Identity] = {}
    for ident in identities:
        key: tuple[str, ...] = (ident.kind, ident.value)
        if not ident.value:
            key += (ident.source, ident.status or "", ident.raw)
        seen = out.get(key)
        out[key] = ident if seen is None else _combine(seen, ident)
    return list(out.values())


def _combine(first: Identity, later: Identity) -> Identity:
    confidences = [c for c in (first.confidence, later.confidence) if c is not None]
    conflict = join_conflicts(first.conflict, [later.conflict] if later.conflict else [])
    return first.model_copy(update={
        "confidence": max(confidences) if confidences else None, "checks": {**first.checks, **later.checks},
        "seal": later.seal or first.seal, "read_at": first.read_at or later.read_at,
        "crop": first.crop or later.crop, "conflict": conflict,
        "conflicts": join_notes(first.conflicts, later.conflicts)})


def _checked(ident: Identity) -> Identity:
    if ident.kind != "container" or not ident.value or "iso6346" in ident.checks:
        return ident
    return ident.model_copy(update={"checks": {**ident.checks, "iso6346": container_check(ident.value)}})


def _flag_container(ident: Identity, flags: dict[tuple[str, str], list[Conflict]]) -> None:
    result = ident.checks.get("iso6346") or container_check(ident.value)
    if result == "bad_check_digit":
        expected = str(check_digit(ident.value.replace(" ", "").upper()[:10]))
        flags[(ident.kind, ident.value)].append((
            f"container code {ident.value} fails its ISO 6346 check digit (the digit should be {expected})",
            ConflictNote(code="container_check_digit", values={"code": ident.value, "expected": expected})))
    elif result == "bad_format":
        flags[(ident.kind, ident.value)].append((f"container code {ident.value} is not an ISO 6346 code",
                                                 ConflictNote(code="container_format", values={"code": ident.value})))


def _flag_groups(idents: list[Identity], key_of: Callable[[Identity], str], sentence: str,
                 note: tuple[ConflictCode, str, str], flags: dict[tuple[str, str], list[Conflict]]) -> None:
    """Flag every identity of a group (same key) that holds more than one value; `note` is the conflict's code and
    the names of its values and key."""
    code, values_name, key_name = note
    groups: dict[str, list[Identity]] = defaultdict(list)
    for ident in idents:
        groups[key_of(ident)].append(ident)
    for key, group in groups.items():
        values = sorted({i.value for i in group})
        if len(values) > 1:
            found = (sentence.format(values=" and ".join(values), key=key),
                     ConflictNote(code=code, values={values_name: ", ".join(values), key_name: key}))
            for ident in group:
                flags[(ident.kind, ident.value)].append(found)


def with_conflicts(ident: Identity, found: list[Conflict]) -> Identity:
    """The identity with these conflicts added to its sentences (`conflict`) and its codes (`conflicts`)."""
    conflict = join_conflicts(ident.conflict, [sentence for sentence, _ in found])
    notes = join_notes(ident.conflicts, [note for _, note in found])
    if conflict == ident.conflict and notes == ident.conflicts:
        return ident
    return ident.model_copy(update={"conflict": conflict, "conflicts": notes})


def join_conflicts(conflict: str | None, more: list[str]) -> str | None:
    """The conflict sentences, each once, in a stable order."""
    parts = [p for p in (conflict or "").split("; ") if p] + more
    return "; ".join(sorted(set(parts))) or None


def join_notes(notes: Sequence[ConflictNote], more: Sequence[ConflictNote]) -> list[ConflictNote]:
    """The conflict codes with their values, each once, in a stable order (as join_conflicts the sentences)."""
    unique = {(n.code, tuple(sorted(n.values.items()))): n for n in [*notes, *more]}
    return [unique[key] for key in sorted(unique)]
