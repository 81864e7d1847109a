"""The one hash chain: v1 (each chain's old form) and v2 verify, any tampering is named by entry."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance import hashchain as hc

FORM = hc.ChainForm("test log", ("seq", "actor", "detail", "prev_hash"))
DOC = hc.ChainForm("test record", None, frozenset({"hash", "signature"}))


def _chain(n: int, form: hc.ChainForm = FORM) -> list[dict]:
    entries: list[dict] = []
    for i in range(n):
        entries.append(hc.seal(form, entries[-1] if entries else None, {"actor": f"陳{i}", "detail": f"d{i}"}))
    return entries


def _v1_entry(prev: dict | None, body: dict, ascii_only: bool) -> dict:
    """An entry written the way the pre-issue-15 code did."""
    e = {**body, "seq": prev["seq"] + 1 if prev else 1, "prev_hash": prev["hash"] if prev else hc.GENESIS}
    text = json.dumps({k: e[k] for k in FORM.fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)
    return {**e, "hash": hashlib.sha256(text.encode()).hexdigest()}


def test_new_entries_are_v2_and_link_up():
    entries = _chain(4)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4] and entries[0]["prev_hash"] == hc.GENESIS
    assert all(hc.version_of(e["hash"]) == 2 for e in entries)
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(entries, entries[1:]))
    assert hc.verify(FORM, entries) is None


@pytest.mark.parametrize("ascii_only", [False, True])
def test_a_v1_chain_verifies_and_v2_entries_may_follow_it(ascii_only):
    form = hc.ChainForm("test log", FORM.fields, v1_ascii=ascii_only)
    old: list[dict] = []
    for i in range(3):
        old.append(_v1_entry(old[-1] if old else None, {"actor": "王小明", "detail": f"行李 {i}"}, ascii_only))
    entries = [*old, hc.seal(form, old[-1], {"actor": "x", "detail": "y"})]
    assert hc.verify(form, entries) is None
    other = hc.ChainForm("test log", FORM.fields, v1_ascii=not ascii_only)  # the other chain's v1 flavour
    assert hc.verify(other, entries) == hc.ChainBreak("test log", 1, "was changed after it was written "
                                                                      "(its content does not match its hash)")


def test_a_changed_entry_is_named_in_one_sentence():
    entries = _chain(5)
    entries[2]["detail"] = "edited"
    broken = hc.verify(FORM, entries)
    assert broken is not None and broken.seq == 3
    assert str(broken) == "test log entry 3 was changed after it was written (its content does not match its hash)"


def test_a_rehashed_entry_breaks_the_next_link():
    entries = _chain(5)
    entries[1]["actor"] = "mallory"
    entries[1]["hash"] = FORM.digest(entries[1])
    broken = hc.verify(FORM, entries)
    assert broken is not None and broken.seq == 3 and "does not link to entry 2" in str(broken)


def test_a_removed_entry_is_named():
    entries = _chain(5)
    del entries[1]
    assert str(hc.verify(FORM, entries)) == "test log entry 3 follows entry 1, so entry 2 is missing"


def test_a_v2_entry_rewritten_in_v1_is_a_downgrade():
    entries = _chain(3)
    entries[2]["hash"] = FORM.digest(entries[2], 1)
    broken = hc.verify(FORM, entries)
    assert broken is not None and broken.seq == 3 and "form v1 after entries in v2" in broken.reason


def test_an_unknown_hash_form_is_refused():
    entries = _chain(2)
    entries[1]["hash"] = "v9:" + "0" * 64
    broken = hc.verify(FORM, entries)
    assert broken is not None and broken.seq == 2 and "no known canonical form" in broken.reason


def test_documents_hash_everything_but_the_unhashed_keys():
    (doc,) = _chain(1, DOC)
    doc["signature"] = "anything"
    assert hc.verify(DOC, [doc]) is None
    doc["added"] = 1  # a field added later is covered by the hash
    assert hc.verify(DOC, [doc]) is not None


def test_v1_and_v2_digests_differ_for_the_same_content():
    (e,) = _chain(1)
    assert FORM.digest(e, 1) != FORM.digest(e, 2).removeprefix(hc.V2_PREFIX)


@given(st.dictionaries(st.text(max_size=5), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3), max_leaves=8),
    max_size=4))
def test_canonical_v2_ignores_key_order(value):
    reordered = dict(reversed(list(value.items())))
    assert hc.canonical_v2(value) == hc.canonical_v2(reordered)
    assert json.loads(hc.canonical_v2(value)) == value
