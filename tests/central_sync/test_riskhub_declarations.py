"""Declarations import: good rows kept, each bad row one sentence with its row number and values; the
simulated feed's output imports cleanly as CSV and as JSON; storage on both hub backends."""

from __future__ import annotations

import pytest

from central_sync.hub.store import HubStore
from central_sync.riskhub import declarations as d
from central_sync.riskhub import declgen
from models.ocr.iso6346 import is_valid
from riskhub_fixtures import store  # noqa: F401 - the fixture

HEADER = ",".join(d.CSV_COLUMNS)
GOOD = "DEC1,MSCU 123456-5,,Harbour Freight Ltd,8471.30:Laptops;6403.99:Shoes,false,12500,CN,true,ES1234"


def test_bad_rows_are_refused_one_sentence_each_and_good_rows_kept() -> None:
    text = "\n".join([HEADER, GOOD,
                      "DEC2,,,Golden Bay,0901.21:Coffee,false,9000,VN,false,",            # neither container nor plate
                      "DEC3,TGHU1234560,,Golden Bay,,true,heavy,VN,false,",               # weight not a number
                      "DEC4,TGHU1234560,,Golden Bay,0901.21:Coffee,true,3000,VN,false,",  # empty with goods
                      "DEC5,TGHU1234560,,Golden Bay,,maybe,3000,VN,false,",               # boolean
                      "DEC6,TGHU1234560,,Golden Bay,,true,3000,Vietnam,false,",           # origin not ISO
                      "DEC7,TGHU1234560,,Golden Bay,coffee,false,3000,VN,false,",         # goods not HS:desc
                      "DEC8,TGHU1234560,,Golden Bay,,true,3000,VN,true,",                 # sealed without seal id
                      "DEC9,,AB 1234,Lantau Food,1006.30:Rice,false,7000,TH,false,,surplus",
                      "DEC10,,AB-1234,Lantau Food,1006.30:Rice,false,7000,TH,false,"])
    result = d.parse_csv(text)
    assert [x.ref for x in result.good] == ["DEC1", "DEC10"]
    assert result.good[0].container == "MSCU1234565" and result.good[1].plate == "AB1234"
    assert result.good[0].goods[1].description == "Shoes"
    assert result.view()["refused"] == 8
    for n, (err, says) in enumerate(zip(result.errors, ("neither a container nor a plate", "weight_kg is not a number: 'heavy'",
                                                         "declared empty but lists 1 goods", "declared_empty 'maybe'",
                                                         "origin", "'coffee' is not HS:description", "no seal_id",
                                                         "1 cell(s) more")), start=3):
        assert err.startswith(f"row {n}: "), err
        assert says in err, err
        assert "\n" not in err
    assert "Golden Bay" in result.errors[1]  # the row's values are named


def test_a_csv_without_the_required_columns_says_which() -> None:
    result = d.parse_csv("id,box\n1,2\n")
    assert result.good == [] and result.errors == ["row 1: the header ['id', 'box'] lacks the column(s) ref, trader, origin"]


def test_json_import_numbers_items_and_names_the_field() -> None:
    result = d.parse_json('[{"ref": "J1", "plate": "XY 99", "trader": "T", "origin": "CN"},'
                          ' {"ref": "J2", "plate": "XY 98", "trader": "T", "origin": "CN", "colour": "red"}, 7]')
    assert [x.ref for x in result.good] == ["J1"]
    assert result.errors[0].startswith("row 2: colour extra inputs are not permitted")
    assert result.errors[1].startswith("row 3: ")
    assert d.parse_json("{not json").errors[0].startswith("the upload is not JSON")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_simulated_feed_imports_cleanly(fmt: str) -> None:
    decls = declgen.generate(200, seed=7)
    text = declgen.to_csv(decls) if fmt == "csv" else declgen.to_json(decls)
    result = d.parse_csv(text) if fmt == "csv" else d.parse_json(text)
    assert result.errors == [] and len(result.good) == 200
    assert all(is_valid(x.container) for x in result.good if x.container)
    assert any(x.declared_empty for x in result.good) and any(x.sealed for x in result.good)
    assert declgen.generate(5, seed=7) == decls[:5]  # reproducible


def test_declarations_are_stored_and_a_resent_one_replaces_the_old(store: HubStore) -> None:
    first = d.parse_csv("\n".join([HEADER, GOOD])).good
    assert d.store_declarations(store, first, "test") == 1
    again = d.parse_csv("\n".join([HEADER, GOOD.replace("12500", "13000")])).good
    d.store_declarations(store, again, "test")
    rows = d.recent(store, 0.0)
    assert len(rows) == 1 and rows[0]["weight_kg"] == 13000
    assert rows[0]["goods"] == [["8471.30", "Laptops"], ["6403.99", "Shoes"]] and rows[0]["sealed"] is True
