"""One hash chain for the station audit, the control-room audit and the diagnostic records.

An entry holds `seq` (1, 2, 3, ... without gaps), `prev_hash` (the previous entry's hash, GENESIS
for the first) and `hash`, a sha256 over the entry's canonical form. A changed entry breaks its own
hash, a removed one the sequence, a re-hashed one the next link; removing the newest entries is not
detectable from the chain alone. The canonical form is versioned, and the version is read from the
hash value itself, so rows and files need no new column or field:

    v1   hash = hex(sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()))
         the form each chain used before issue 15: non-ASCII as is (station audit, diag records)
         or escaped as \\uXXXX (control room), which each chain's `ChainForm.v1_ascii` records.
    v2   hash = "v2:" + hex(sha256(b"cpe-chain/2\\n" + canonical_v2(fields)))
         one form for every chain: sorted keys, no whitespace, non-ASCII as is, UTF-8 (a float
         that is not finite is written NaN/Infinity, as Python's json does, rather than lose a
         record); the domain line keeps a v2 digest from ever equalling a v1 one.

`fields` is the entry restricted to the chain's declared field list (or, for chains of documents,
everything but the unhashed keys). New entries are sealed with CURRENT; an entry in an older form
after one in a newer form breaks the chain (a forger cannot downgrade part of it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
CURRENT = 2
V2_PREFIX = "v2:"
V2_DOMAIN = b"cpe-chain/2\n"


@dataclass(frozen=True)
class ChainForm:
    """What one chain hashes: its declared fields (None: all but `unhashed`) and its v1 flavour."""

    name: str
    fields: tuple[str, ...] | None
    unhashed: frozenset[str] = frozenset({"hash"})
    v1_ascii: bool = False

    def hashed(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The part of `entry` the hash covers."""
        if self.fields is None:
            return {k: v for k, v in entry.items() if k not in self.unhashed}
        return {k: entry[k] for k in self.fields}

    def digest(self, entry: Mapping[str, Any], version: int = CURRENT) -> str:
        """The hash value of `entry` in canonical form `version` (v2 values carry their prefix)."""
        if version == 1:
            return hashlib.sha256(canonical_v1(self.hashed(entry), ascii_only=self.v1_ascii)).hexdigest()
        if version == 2:
            return V2_PREFIX + hashlib.sha256(V2_DOMAIN + canonical_v2(self.hashed(entry))).hexdigest()
        raise ValueError(f"canonical form v{version} is not one of v1, v2")


@dataclass(frozen=True)
class ChainBreak:
    """The first entry that does not hold, and why, as one sentence."""

    chain: str
    seq: int
    reason: str

    def __str__(self) -> str:
        return f"{self.chain} entry {self.seq} {self.reason}"


def canonical_v1(value: Any, ascii_only: bool = False) -> bytes:
    """The pre-issue-15 form: sorted keys, no whitespace, UTF-8 (non-ASCII escaped when `ascii_only`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only).encode("utf-8")


def canonical_v2(value: Any) -> bytes:
    """Sorted keys, no whitespace, non-ASCII as is, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_text(value: Any) -> str:
    """Canonical JSON text of a value stored inside an entry (an audit row's detail)."""
    return canonical_v2(value).decode("utf-8")


def version_of(hash_value: object) -> int | None:
    """The canonical form a hash value was made with; None when it is neither v1 nor v2 shaped."""
    if not isinstance(hash_value, str):
        return None
    if hash_value.startswith(V2_PREFIX):
        return 2 if _is_hex64(hash_value[len(V2_PREFIX):]) else None
    return 1 if _is_hex64(hash_value) else None


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def seal(form: ChainForm, head: Mapping[str, Any] | None, body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` as the entry after `head` (None: the first): seq, prev_hash and its CURRENT-form hash."""
    entry = {**body, "seq": head["seq"] + 1 if head else 1, "prev_hash": head["hash"] if head else GENESIS}
    entry["hash"] = form.digest(entry)
    return entry


@dataclass
class Walk:
    """Where a verification stands: the previous entry's seq, hash and canonical form."""

    seq: int = 0
    hash: str = GENESIS
    version: int = 1

    def step(self, form: ChainForm, entry: Mapping[str, Any]) -> ChainBreak | None:
        """Check `entry` as the next one; advance past it when it holds."""
        problem = link_problem(form, entry, self)
        if problem:
            return ChainBreak(form.name, _seq_of(entry, self.seq + 1), problem)
        self.seq, self.hash, self.version = entry["seq"], entry["hash"], version_of(entry["hash"]) or 1
        return None


def _seq_of(entry: Mapping[str, Any], default: int) -> int:
    seq = entry.get("seq")
    return seq if isinstance(seq, int) else default


def link_problem(form: ChainForm, entry: Mapping[str, Any], walk: Walk) -> str:
    """What is wrong with `entry` following `walk` (the rest of a sentence naming it), or ""."""
    seq, expected = entry.get("seq"), walk.seq + 1
    if seq != expected:
        return (f"follows entry {walk.seq}, so entry {expected} is missing" if isinstance(seq, int) and seq > expected
                else f"has seq {seq!r} where entry {expected} was due")
    if entry.get("prev_hash") != walk.hash:
        return f"does not link to entry {walk.seq} (prev_hash {str(entry.get('prev_hash'))[:12]}, not {walk.hash[:12]})"
    version = version_of(entry.get("hash"))
    if version is None:
        return f"has a hash value {str(entry.get('hash'))[:16]!r} in no known canonical form"
    if version < walk.version:
        return f"is in canonical form v{version} after entries in v{walk.version} (it was rewritten)"
    if form.digest(entry, version) != entry["hash"]:
        return "was changed after it was written (its content does not match its hash)"
    return ""


def verify(form: ChainForm, entries: Iterable[Mapping[str, Any]]) -> ChainBreak | None:
    """Walk `entries` oldest first; the first break, or None when the whole chain holds."""
    walk = Walk()
    for entry in entries:
        broken = walk.step(form, entry)
        if broken:
            return broken
    return None
