"""The watchlist index: the vectorised hash is the lookup's hash, and lookups are exact."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from risk import index

VALUES = st.lists(st.text(st.characters(codec="utf-8", exclude_characters=" "), min_size=1,
                          max_size=30), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_the_vectorised_hash_is_the_hash_a_lookup_computes(values: list[str]) -> None:
    raw = [v.encode() for v in values]
    blob = np.frombuffer(b"".join(raw), dtype=np.uint8)
    lengths = np.array([len(r) for r in raw], dtype=np.int32)
    starts = (np.cumsum(lengths) - lengths).astype(np.int64)
    assert index.hashes_of(blob, starts, lengths).tolist() == [index.value_hash(r) for r in raw]


@settings(max_examples=200, deadline=None)
@given(VALUES, VALUES)
def test_a_lookup_finds_exactly_the_values_indexed(values: list[str], others: list[str]) -> None:
    built = index.build(" ".join(values), list(range(len(values))), np.arange(len(values), dtype=np.int32))
    for i, v in enumerate(values):
        assert i in built.lookup(v)
        assert sorted(built.lookup(v)) == [j for j, w in enumerate(values) if w == v]
    for o in others:
        assert (built.lookup(o) != []) == (o in values)


def test_rows_with_colliding_hashes_are_told_apart_by_their_bytes() -> None:
    built = index.build("AB12 CD34", [0, 1], np.arange(2, dtype=np.int32))
    forged = index.KindIndex(np.full(2, built.hashes[0]), built.starts, built.lengths, built.metas, built.blob)
    value = built.blob[int(built.starts[0]):int(built.starts[0]) + int(built.lengths[0])].decode()
    assert forged.lookup(value) == [int(built.metas[0])] and forged.lookup("ZZ99") == []
