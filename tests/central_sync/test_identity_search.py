"""Search inspections by identity on both hub backends (SQLite and PostgreSQL): exact and prefix, any kind,
written by the real ingest path with the record, confined to the station's own records, through the index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from central_sync import protocol as p
from central_sync.control_room import queries
from central_sync.control_room.db import migrate as migrate_room
from central_sync.devtools import make_record
from central_sync.hub.ingest import Ingestor
from central_sync.hub import search
from central_sync.hub.search import identity_clause, normalise
from central_sync.hub.store import Cursor, HubStore, open_store
from central_sync.schema import Identity, InspectionRecord, SealStatus, Verdict

IDENTS = [
    [Identity(kind="plate", value="AB 1234"), Identity(kind="plate", value="粤Z·A123港"),
     Identity(kind="container", value="CSQU3054383"), Identity(kind="seal", value="HKEL0001234",
                                                               seal=SealStatus(state="tampered"))],
    [Identity(kind="plate", value="AB12"), Identity(kind="rfid_tid", value="E2801160200073F1A2B3C4D5"),
     Identity(kind="rfid_epc", value="300833B2DDD9014000000001")],
    [Identity(kind="eseal", value="HKEL0001299"), Identity(kind="rfid", value="0102030405")],
]


def ingest(store: HubStore, records: list[InspectionRecord], station: str | None = None) -> None:
    ing = Ingestor(store, "hub-s", lambda t, b: None)
    ing.handle([(p.topic(station or r.station, "alert"), p.encode_envelope(station or r.station, "alert", i, r.seq,
                                                                          r.id, r.to_json().encode(), 0.0))
                for i, r in enumerate(records, 1)])


def records(n: int = 3) -> list[InspectionRecord]:
    return [make_record("gate-1", seq, Verdict.SUSPECT).model_copy(update={"identities": IDENTS[seq - 1]})
            for seq in range(1, n + 1)]


def found(store: HubStore, q: str, kind: str | None = None, match: str = "prefix") -> list[int]:
    where, args = identity_clause(q, kind, match)  # type: ignore[arg-type]
    return sorted(json.loads(body)["seq"] for body, *_ in store.records(f"WHERE {where}", args, 100, 0))


def test_exact_and_prefix_over_every_kind(store: HubStore) -> None:
    ingest(store, records())
    assert found(store, "AB12") == [1, 2]  # "AB 1234" is indexed as AB1234
    assert found(store, "AB12", match="exact") == [2]
    assert found(store, "ab 1234", "plate", "exact") == [1]
    assert found(store, "粤ZA1") == [1] and found(store, "粤Z·A123港", match="exact") == [1]
    assert found(store, "CSQU", "container") == [1] and found(store, "CSQU", "plate") == []
    assert found(store, "E2801160", "rfid_tid") == [2] and found(store, "3008", "rfid_epc") == [2]
    assert found(store, "HKEL00012", "seal") == [1, 3]  # an older record's "eseal" is a seal
    assert found(store, "0102030405", "em4100", "exact") == [3]
    assert found(store, "ZZZ") == [] and found(store, "%") == [] and found(store, "_B") == []


def test_the_seal_state_and_events_reach_the_hub_with_the_record(store: HubStore) -> None:
    from datetime import UTC, datetime

    from central_sync.schema import SealEventOut

    at = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    events = [SealEventOut(seal_id="HKEL0001234", state="intact", at=at, reader="eseal", events=2),
              SealEventOut(seal_id="HKEL0001234", state="tampered", at=at, reader="eseal", events=3)]
    rec = records(1)[0].model_copy(update={"seal_events": events})
    ingest(store, [rec])
    body = InspectionRecord.model_validate_json(store.records("WHERE id = ?", (rec.id,), 1, 0)[0][0])
    assert body.seal_events == events
    assert [i.seal for i in body.identities if i.kind == "seal"] == [SealStatus(state="tampered")]


def test_a_record_sent_twice_is_indexed_once_and_another_station_cannot_add_to_it(store: HubStore) -> None:
    recs = records(1)
    ingest(store, recs)
    ingest(store, recs)
    forged = recs[0].model_copy(update={"station": "gate-9", "identities": [Identity(kind="plate", value="FORGED1")]})
    ingest(store, [forged], station="gate-9")
    assert store.query("SELECT count(*) FROM record_identities") == [(4,)]
    assert found(store, "FORGED") == []


def test_the_control_room_search_uses_the_index(store: HubStore) -> None:
    migrate_room(store)
    ingest(store, records())
    assert [a["record"]["seq"] for a in queries.search_alerts(store, q="HKEL", ident_kind="seal")] == [3, 1]
    assert [a["record"]["seq"] for a in queries.search_alerts(store, q="AB12", match="exact")] == [2]


def plated(n: int) -> list[InspectionRecord]:
    """`n` alerts, one plate each (A 1, A 2 ... all starting with "A"), the later the newer."""
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    return [make_record("gate-1", seq, Verdict.SUSPECT).model_copy(update={
        "identities": [Identity(kind="plate", value=f"A{seq}")], "decided_at": t0 + timedelta(seconds=seq)})
        for seq in range(1, n + 1)]


def test_a_broad_prefix_is_answered_newest_first_without_collecting_every_match(store: HubStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over BROAD_ROWS matching index rows the count stops reading at BROAD_ROWS + 1, the page comes newest
    first through each record's own index rows, and the page says more results exist."""
    monkeypatch.setattr(search, "BROAD_ROWS", 5)
    migrate_room(store)
    ingest(store, plated(12))
    assert search.matching_rows(store, "A") == 6  # 12 match; 6 index rows were read
    assert search.matching_rows(store, "A1") == 4  # A1, A10, A11, A12: selective
    assert search.search_clause(store, "A")[0].startswith("EXISTS") and search.search_clause(store, "A1")[0].startswith("id IN")
    page, more, _ = queries.search_page(store, q="A", limit=4)
    assert [a["record"]["seq"] for a in page] == [12, 11, 10, 9] and more
    page, more, _ = queries.search_page(store, q="A1", limit=4)
    assert [a["record"]["seq"] for a in page] == [12, 11, 10, 1] and not more
    page, more, _ = queries.search_page(store, q="a", ident_kind="plate", limit=20)
    assert [a["record"]["seq"] for a in page] == list(range(12, 0, -1)) and not more  # broad, yet exact and whole


async def test_the_api_says_when_a_search_has_more_results_than_its_page(store: HubStore, tmp_path: Path) -> None:
    import httpx

    from central_sync.hub import api_auth
    from central_sync.hub.api import create_app

    ingest(store, plated(12))
    token, line = api_auth.new_token("archive")
    (tmp_path / "tokens").write_text(line + "\n")
    app = create_app(store, service_tokens=api_auth.ServiceTokens.load(tmp_path / "tokens"))
    bearer = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub") as http:
        for path, seqs, more in (("/api/inspections?q=A&limit=5", [12, 11, 10, 9, 8], "true"),
                                 ("/api/alerts?q=A1&limit=5", [12, 11, 10, 1], "false"),
                                 ("/api/alerts?q=A&limit=12", list(range(12, 0, -1)), "false")):
            r = await http.get(path, headers=bearer)
            assert r.status_code == 200 and r.headers[search.MORE_HEADER] == more, path
            assert [a["record"]["seq"] for a in r.json()] == seqs, path


def test_a_broad_prefix_checks_each_record_through_its_own_index_rows_in_sqlite(tmp_path: Path) -> None:
    hub = open_store(str(tmp_path / "hub.db"))
    hub.migrate()
    where, args = search.identity_clause("A", broad=True)
    plan = " ".join(str(r) for r in hub.query(f"EXPLAIN QUERY PLAN SELECT id FROM records WHERE {where}"
                                              " ORDER BY decided_ts DESC LIMIT 100", args))
    assert "records_decided" in plan and "sqlite_autoindex_record_identities_1 (record_id=?)" in plan, plan


def test_prefix_search_is_answered_by_the_index_in_sqlite(tmp_path: Path) -> None:
    hub = open_store(str(tmp_path / "hub.db"))
    hub.migrate()
    where, args = identity_clause("AB12")
    plan = " ".join(str(r) for r in hub.query(f"EXPLAIN QUERY PLAN SELECT id FROM records WHERE {where}", args))
    assert "record_identities_norm" in plan and "SCAN record_identities" not in plan


def test_normalised_forms() -> None:
    assert normalise("csqu 305438-3") == "CSQU3054383" and normalise("粤Z·A123港") == "粤ZA123港"
    assert normalise("ＡＢ１２３４") == "AB1234"  # full-width, as some OCR and keyboards give


CYRILLIC_AB = "\u0410\u0412"  # А and В, drawn like A and B


def test_a_plate_typed_or_read_with_cyrillic_or_greek_look_alikes_finds_the_latin_one_and_back(store: HubStore) -> None:
    """Before, "АВ1234" (Cyrillic А, В) found only itself and "AB1234" only itself, where the station's risk
    engine reads both as one plate; now all forms find all, exact and by prefix, and the hub API too."""
    recs = [make_record("gate-1", seq, Verdict.SUSPECT).model_copy(update={"identities": [Identity(kind="plate", value=v)]})
            for seq, v in enumerate(["AB1234", CYRILLIC_AB + "1234", "\u0391\u03921234", "\u0430\u0432 1234", "KL/77"], 1)]
    ingest(store, recs)
    for typed in ("AB1234", CYRILLIC_AB + "1234", "a\u0432-1234"):
        assert found(store, typed, "plate", "exact") == [1, 2, 3, 4], ascii(typed)
    assert found(store, CYRILLIC_AB) == [1, 2, 3, 4] and found(store, "AB") == [1, 2, 3, 4]
    assert found(store, "KL77", match="exact") == [5]  # a slash, as the station drops it


def test_a_search_key_is_the_old_key_made_coarser() -> None:
    """Whatever two values had one key before the look-alikes were folded, they have one key now: a legal hold
    keyed the old way keeps every record it held once both are keyed again (the migration)."""
    values = ["AB 1234", CYRILLIC_AB + "1234", "ab.1234", "粤Z·A123港", "粤ZA123港", "ＡＢ１２３４", "KL/77", "KL77",
              "\u0391\u03921234", "A\u200bB", "Ǆ", "ǅ", "DŽ", "ß", "SS", "ﬁ", "FI", "\u0301A", "-", "", "Å", "Å"]
    for a in values:
        for b in values:
            if old_normalise(a) == old_normalise(b):
                assert normalise(a) == normalise(b), (a, b)


def old_normalise(value: str) -> str:
    """The identity index's key before migration 1 (REKEY_NORMS)."""
    import re
    import unicodedata
    return re.sub(r"[\s.\-·・]+", "", unicodedata.normalize("NFKC", value)).upper()


def keyed_the_old_way(store: HubStore) -> None:
    """The store as a hub from before migration 1 left it: every key in the old form, the migration not recorded."""
    holds = store._has_table("legal_holds")

    def back(cur: Cursor) -> None:
        cur.execute("SELECT record_id, kind, value FROM record_identities")
        cur.executemany(store.sql("UPDATE record_identities SET norm = ? WHERE record_id = ? AND kind = ? AND value = ?"),
                        [(old_normalise(v), rid, k, v) for rid, k, v in cur.fetchall()])
        if holds:
            cur.execute("SELECT id, value FROM legal_holds WHERE kind <> 'record'")
            cur.executemany(store.sql("UPDATE legal_holds SET norm = ? WHERE id = ?"),
                            [(old_normalise(v), hid) for hid, v in cur.fetchall()])
        cur.execute("DELETE FROM hub_migrations")
    store.run_in_transaction(back)


def test_a_hub_keyed_the_old_way_is_keyed_again_when_it_migrates(store: HubStore) -> None:
    recs = [make_record("gate-1", seq, Verdict.SUSPECT).model_copy(update={"identities": [Identity(kind="plate", value=v)]})
            for seq, v in enumerate(["AB1234", CYRILLIC_AB + "1234", "粤Z·A123港"], 1)]
    ingest(store, recs)
    keyed_the_old_way(store)
    assert found(store, "AB1234", "plate", "exact") == [1] and found(store, CYRILLIC_AB, "plate") == [1]  # the Latin one only
    store.migrate()
    assert found(store, "AB1234", "plate", "exact") == [1, 2] and found(store, "粤ZA1") == [3]
    assert store.query("SELECT number FROM hub_migrations WHERE number = 1") == [(1,)]
    applied = store.query("SELECT count(*) FROM hub_migrations")
    store.migrate()  # recorded: not run again
    assert store.query("SELECT count(*) FROM hub_migrations") == applied


def test_a_hub_from_before_the_index_indexes_its_records_when_it_migrates(store: HubStore) -> None:
    ingest(store, records())
    store.run_in_transaction(lambda cur: cur.execute("DROP TABLE record_identities"))
    store.migrate()
    assert found(store, "AB12") == [1, 2] and found(store, "HKEL", "seal") == [1, 3]
    store.migrate()  # once indexed, a restart does not index again
    assert store.query("SELECT count(*) FROM record_identities") == [(9,)]


async def test_the_hub_api_finds_inspections_by_identity(store: HubStore, tmp_path: Path) -> None:
    import httpx

    from central_sync.hub import api_auth
    from central_sync.hub.api import create_app

    ingest(store, records())
    token, line = api_auth.new_token("archive")
    (tmp_path / "tokens").write_text(f"{line}\n")
    app = create_app(store, service_tokens=api_auth.ServiceTokens.load(tmp_path / "tokens"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub",
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        async def seqs(path: str, **params: str) -> list[int]:
            r = await http.get(path, params=params)
            assert r.status_code == 200, r.text
            return sorted(x["record"]["seq"] for x in r.json())
        assert await seqs("/api/inspections", q="AB12") == [1, 2]
        assert await seqs("/api/inspections", q="AB12", match="exact") == [2]
        assert await seqs("/api/alerts", q="HKEL", ident_kind="seal") == [1, 3]
        assert (await http.get("/api/inspections", params={"q": "AB", "match": "substring"})).status_code == 422
