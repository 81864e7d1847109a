"""Retention and legal holds at the hub, on SQLite and PostgreSQL: the policy prunes exactly what it should,
a hold blocks every deletion until a supervisor releases it, every change is audited, and the state the
stations prune by is signed and versioned."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import protocol as p
from central_sync import retention
from central_sync.control_room import audit
from central_sync.control_room.db import execute
from central_sync.devtools import make_record
from central_sync.hub import retention as hub_retention
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import open_store
from central_sync.riskhub import publish as risk_publish
from central_sync.riskhub import tables as risk_tables
from central_sync.schema import (Identity, InspectionRecord, Review, RiskOut, SearchFinding, SearchReport, SearchResult,
                                 SearchSignature, Verdict)
from tests.central_sync.riskhub_fixtures import risk_key

POLICY = retention.RetentionPolicy(clear_days=30, suspect_days=365, manual_days=365)
DAY = 86400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = str(tmp_path / "hub.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    hub_retention.migrate(s)
    yield s
    s.close()


class Hub:
    """Records ingested as stations send them, `days` old at `NOW`."""

    def __init__(self, store) -> None:
        self.store = store
        self.ingest = Ingestor(store, "hub-r", lambda topic, body: None)
        self.seq = 0
        self.now = make_record("g1", 1).decided_at.timestamp() + 1000 * DAY

    def add(self, verdict: Verdict, days: float, *, plate: str | None = None, review: Review | None = None,
            reports: list[SearchReport] | None = None, scan: str | None = None,
            bundle: int | None = None) -> InspectionRecord:
        self.seq += 1
        rec = make_record("g1", self.seq, verdict, scan_sha=scan)
        at = rec.decided_at + timedelta(seconds=self.now - days * DAY - rec.decided_at.timestamp())
        idents = rec.identities + ([Identity(kind="plate", value=plate, source="cam", status="read" if plate else "unread")]
                                   if plate is not None else [])
        rec = rec.model_copy(update={"decided_at": at, "started_at": at, "identities": idents, "review": review,
                                     "search_reports": reports or [],
                                     "risk": RiskOut(lane="green", score=0, bundle=bundle) if bundle else None})
        kind = "alert" if verdict is Verdict.SUSPECT else "inspection"
        self.ingest.handle([(p.topic("g1", kind), p.encode_envelope("g1", kind, self.seq, rec.seq, rec.id,
                                                                       rec.to_json().encode(), 0.0))])
        if scan:
            execute(self.store, "INSERT INTO blobs (sha256, size, station, data, committed_at) VALUES (?,?,?,?,?)",
                    (scan, 3, "g1", b"npz", 0.0))
        return rec

    def add_with_scan(self, verdict: Verdict, days: float, sha: str) -> InspectionRecord:
        """A record naming scan `sha` that the hub does not hold yet."""
        self.seq += 1
        rec = make_record("g1", self.seq, verdict, scan_sha=sha)
        at = rec.decided_at + timedelta(seconds=self.now - days * DAY - rec.decided_at.timestamp())
        rec = rec.model_copy(update={"decided_at": at, "started_at": at})
        self.ingest.handle([(p.topic("g1", "inspection"), p.encode_envelope("g1", "inspection", self.seq, rec.seq,
                                                                             rec.id, rec.to_json().encode(), 0.0))])
        return rec

    def ack(self, rec: InspectionRecord) -> None:
        execute(self.store, "INSERT INTO cr_actions (id, record_id, kind, actor, at, assignee, text) VALUES"
                            " (?,?,?,?,?,?,?)", (f"a-{rec.id}", rec.id, "ack", "op", 0.0, None, ""))

    def ids(self) -> set[str]:
        return {row[0] for row in self.store.query("SELECT id FROM records")}

    def prune(self) -> dict:
        return hub_retention.prune(self.store, now=self.now)


def _signature(role: str) -> SearchSignature:
    return SearchSignature(badge="B-" + role, role=role, signed_at=make_record("g1", 1).decided_at, digest="0" * 64)


def _signed(report: SearchReport) -> SearchReport:
    """The report with its signatures over its content, as a station signs (the hub checks the digest)."""
    digest = report.content_digest()
    return report.model_copy(update={"officer": report.officer.model_copy(update={"digest": digest}),
                                     "countersigned": report.countersigned and report.countersigned.model_copy(
                                         update={"digest": digest})})


SEIZURE = _signed(SearchReport(version=1, vehicle_type="saloon", minutes=20, outcome="seizure",
                               findings=[SearchFinding(goods="cigarettes", area="boot")], officer=_signature("officer"),
                               countersigned=_signature("supervisor")))


def test_nothing_is_pruned_without_a_policy(store):
    hub = Hub(store)
    old = hub.add(Verdict.CLEAR, 900)
    assert hub.prune()["records"] == 0 and old.id in hub.ids()


def test_the_policy_prunes_exactly_what_it_should(store):
    """Clear past 30 days goes with its scan and its rows; clear younger, suspect younger than a year, an
    unacknowledged alert and an unreleased seizure stay; a released seizure then goes."""
    hub = Hub(store)
    clear_old = hub.add(Verdict.CLEAR, 40, scan="aa" * 32)
    clear_young = hub.add(Verdict.CLEAR, 20)
    suspect_mid = hub.add(Verdict.SUSPECT, 40)
    suspect_old = hub.add(Verdict.SUSPECT, 400)
    suspect_unacked = hub.add(Verdict.SUSPECT, 400)
    confirmed = hub.add(Verdict.CLEAR, 40, review=Review(officer="B-1", decided_at=clear_old.decided_at,
                                                           outcome="threat_confirmed"))
    manual_old = hub.add(Verdict.MANUAL, 400)
    seized_report = hub.add(Verdict.MANUAL, 400, reports=[SEIZURE])
    seized_review = hub.add(Verdict.CLEAR, 400, review=Review(
        officer="B-1", decided_at=clear_old.decided_at, outcome="override", search=SearchResult(outcome="seized")))
    for rec in (suspect_mid, suspect_old):
        hub.ack(rec)
    hub_retention.set_policy(store, POLICY, "admin", "court guidance 2026/4")

    go, kept = hub_retention.plan(store, hub.now)
    assert set(go) == {(clear_old.id, "aa" * 32), (suspect_old.id, None), (manual_old.id, None)}
    assert kept == {"young": 1, "not_released": 1}  # confirmed by its review; seized by its review
    out = hub.prune()
    assert out["records"] == 3 and out["scans"] == 1
    assert hub.ids() == {clear_young.id, suspect_mid.id, suspect_unacked.id, confirmed.id, seized_report.id,
                         seized_review.id}
    assert store.image("aa" * 32) is None
    for table in ("record_identities", "cr_actions", "reviews"):
        assert not store.query(f"SELECT 1 FROM {table} WHERE record_id IN (?,?)", (clear_old.id, suspect_old.id))

    for rec in (seized_report, seized_review):
        hub_retention.release_seizure(store, rec.id, "sup", "case 17 closed by the court")
    assert hub.prune()["records"] == 2
    assert seized_report.id not in hub.ids() and seized_review.id not in hub.ids()
    assert hub.prune()["records"] == 0


def test_a_seizure_is_released_only_as_a_seizure(store):
    hub = Hub(store)
    rec = hub.add(Verdict.CLEAR, 400)
    with pytest.raises(hub_retention.HoldError, match=rec.id):
        hub_retention.release_seizure(store, rec.id, "sup", "closed")


def test_a_hold_blocks_deletion_until_a_supervisor_releases_it_and_both_are_audited(store):
    hub = Hub(store)
    by_plate = hub.add(Verdict.CLEAR, 400, plate="粤Z·A123港")
    by_id = hub.add(Verdict.CLEAR, 400)
    free = hub.add(Verdict.CLEAR, 400)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    vehicle = hub_retention.place_hold(store, "plate", "粤ZA123港", "sup", "court order 88: the vehicle")
    record = hub_retention.place_hold(store, "record", by_id.id, "sup", "court order 88: the pass")
    out = hub.prune()
    assert out["records"] == 1 and hub.ids() == {by_plate.id, by_id.id} and free.id not in hub.ids()
    assert [h["id"] for h in hub_retention.holds(store)] == [record["id"], vehicle["id"]]

    hub_retention.release_hold(store, vehicle["id"], "sup2", "order 88 lifted")
    with pytest.raises(hub_retention.HoldError, match="not standing"):
        hub_retention.release_hold(store, vehicle["id"], "sup2", "again")
    assert hub.prune()["records"] == 1 and hub.ids() == {by_id.id}

    entries = {(e["action"], e["object"]): (e["actor"], json.loads(e["detail"])) for e in audit.entries(store)}
    assert entries[("hold.place", "plate:粤ZA123港")] == ("sup", {"hold": vehicle["id"],
                                                                 "reason": "court order 88: the vehicle"})
    assert entries[("hold.release", "plate:粤ZA123港")][0] == "sup2"
    assert entries[("hold.place", by_id.id)][1]["reason"] == "court order 88: the pass"
    assert entries[("retention.policy", "retention-policy:1")][0] == "admin"
    assert entries[("retention.prune", "hub")][1]["records"] == 1
    assert audit.verify(store)[1] is None


def test_a_vehicle_hold_keeps_what_it_held_and_holds_the_look_alike_reads_once_the_hub_migrates(store):
    """Before, a hold on "АВ1234" (Cyrillic А, В) held only the passes read with Cyrillic letters: the same plate
    read "AB1234" was pruned, where the station's risk engine reads both as one plate. A hub keyed that way is
    keyed again when it migrates (record_identities and legal_holds in one transaction): every record the hold
    held stays held, the look-alike reads are held too, and nothing else is."""
    from test_identity_search import CYRILLIC_AB, keyed_the_old_way

    hub = Hub(store)
    cyrillic = hub.add(Verdict.CLEAR, 400, plate=CYRILLIC_AB + "1234")
    lower = hub.add(Verdict.CLEAR, 400, plate="\u0430\u0432 1234")
    latin = hub.add(Verdict.CLEAR, 400, plate="AB1234")
    greek = hub.add(Verdict.CLEAR, 400, plate="\u0391\u03921234")
    slashed = hub.add(Verdict.CLEAR, 400, plate="KL/77")
    other = hub.add(Verdict.CLEAR, 400, plate="XY999")
    hub_retention.set_policy(store, POLICY, "admin", "default")
    hub_retention.place_hold(store, "plate", CYRILLIC_AB + "1234", "sup", "court order 7")
    hub_retention.place_hold(store, "plate", "KL77", "sup", "court order 8")
    keyed_the_old_way(store)

    def unheld() -> set[str]:
        return {rid for _, rid, _, _ in hub_retention.candidates(store, hub.now)}
    assert unheld() == {latin.id, greek.id, slashed.id, other.id}  # as the hub held them before
    hub_retention.migrate(store)
    assert unheld() == {other.id}
    assert hub.prune()["records"] == 1 and hub.ids() == {cyrillic.id, lower.id, latin.id, greek.id, slashed.id}
    held = retention.Holds.of(retention.RetentionState.model_validate_json(
        hub_retention.state(store, 1).model_dump_json()).holds)  # as a station holds them
    assert [held.match(json.loads(latin.to_json())), held.match(json.loads(other.to_json()))] == ["plate", None]


def test_a_hold_needs_a_reason_and_something_to_hold(store):
    with pytest.raises(hub_retention.HoldError, match="needs a reason"):
        hub_retention.place_hold(store, "plate", "AB1234", "sup", "  ")
    with pytest.raises(hub_retention.HoldError, match="not in the hub database"):
        hub_retention.place_hold(store, "record", "no-such-record", "sup", "order")


def test_a_vehicle_hold_without_a_letter_or_digit_is_refused_instead_of_holding_every_unread_plate(store):
    """Before, a hold on plate "-" was placed, keyed "" as every unread plate is, and held every pass whose plate
    the cameras could not read; it is refused with its value, and nothing is held."""
    hub = Hub(store)
    unread = hub.add(Verdict.CLEAR, 400, plate="")
    hub_retention.set_policy(store, POLICY, "admin", "default")
    for value in ("-", " · ", "\u200b"):
        with pytest.raises(hub_retention.HoldError, match="names no vehicle") as refused:
            hub_retention.place_hold(store, "plate", value, "sup", "order 3")
        assert refused.value.code == "no_vehicle" and repr(value.strip()) in str(refused.value)
    assert hub_retention.holds(store) == [] and hub.prune()["records"] == 1 and unread.id not in hub.ids()


def test_the_published_state_is_signed_versioned_and_carries_the_holds(store):
    key = Ed25519PrivateKey.generate()
    assert not hub_retention.unpublished(store)  # nothing set: nothing to publish
    hub_retention.set_policy(store, POLICY, "admin", "default")
    first, _ = hub_retention.publish(store, key)
    hold = hub_retention.place_hold(store, "container", "CSQU 305438 3", "sup", "order 9")
    second, signed = hub_retention.publish(store, key)
    got = retention.verify(key.public_key(), signed)
    assert (first.version, got.version) == (1, 2) and got == second
    assert got.policy == POLICY and got.holds == [retention.Hold(kind="container", value="CSQU 305438 3")]
    assert hub_retention.latest_signed(store) == (2, signed)
    with pytest.raises(retention.RetentionError, match="does not verify"):
        retention.verify(Ed25519PrivateKey.generate().public_key(), signed)
    assert hold["norm"] == "CSQU3054383"
    assert not hub_retention.unpublished(store)
    hub_retention.release_hold(store, hold["id"], "sup", "lifted")  # made without publishing (no key, no link)
    assert hub_retention.unpublished(store)


def test_figures_say_what_the_next_prune_deletes(store):
    hub = Hub(store)
    hub.add(Verdict.CLEAR, 40, scan="bb" * 32)
    hub.add(Verdict.CLEAR, 10)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    fig = hub_retention.figures(store, hub.now)
    assert fig["records"] == {"clear": 2} and fig["scans"] == 1 and fig["scan_bytes"] == 3
    assert fig["next_prune"] == {"records": 1, "kept": {}} and fig["db_bytes"] > 0


def test_search_photos_go_with_their_record_unless_a_kept_report_names_them(store):
    """A record pruned takes the search photos its reports named (synced as blobs), but not one that a report
    of a record kept also names."""
    hub = Hub(store)
    mine, shared = "bb" * 32, "cc" * 32
    searched = SearchReport(version=1, vehicle_type="van", minutes=10, outcome="nothing_found",
                            officer=_signature("officer"))
    old = hub.add(Verdict.CLEAR, 40, reports=[_signed(searched.model_copy(update={"photos": [mine, shared]}))])
    young = hub.add(Verdict.CLEAR, 5, reports=[_signed(searched.model_copy(update={"photos": [shared]}))])
    for sha in (mine, shared):
        execute(store, "INSERT INTO blobs (sha256, size, station, data, committed_at) VALUES (?,?,?,?,?)",
                (sha, 4, "g1", b"\xff\xd8\xff\xe0", 0.0))
    hub_retention.set_policy(store, POLICY, "admin", "court guidance 2026/4")
    out = hub.prune()
    assert out["records"] == 1 and out["photos"] == 1 and hub.ids() == {young.id}
    assert store.image(mine) is None and store.image(shared) is not None and old.id not in hub.ids()


def _changed_after_the_plan(monkeypatch, hub, changed):  # noqa: ANN001, ANN202
    """The next prune plans `changed`'s record alone, then the station's update `changed` is ingested before the
    deletion; the real plan is returned."""
    planned = hub_retention.plan

    def changed_meanwhile(*args, **kwargs):  # noqa: ANN002, ANN003
        chosen = planned(*args, **kwargs)
        assert [rid for rid, _ in chosen[0]] == [changed.id]
        hub.ingest.handle([(p.topic("g1", "review"), p.encode_envelope("g1", "review", 99, changed.seq, changed.id,
                                                                        changed.to_json().encode(), 0.0))])
        return chosen
    monkeypatch.setattr(hub_retention, "plan", changed_meanwhile)
    return planned


@pytest.mark.parametrize("how", ["report", "review"])
def test_a_record_that_becomes_a_seizure_between_the_plan_and_the_deletion_stays(store, monkeypatch, how):
    """The station's seizure (a search report, or an officer's review saying seized) ingested after the prune
    planned the record: the deletion re-checked holds only, and the record went with its reports and scan."""
    hub = Hub(store)
    hub_retention.set_policy(store, POLICY, "admin", "policy")
    rec = hub.add(Verdict.CLEAR, 400, scan="ab" * 32)
    _changed_after_the_plan(monkeypatch, hub, rec.model_copy(update=(
        {"search_reports": [SEIZURE]} if how == "report" else
        {"review": Review(officer="B-1", decided_at=rec.decided_at, outcome="threat_confirmed", label="drugs",
                          search=SearchResult(outcome="seized"))})))
    assert hub.prune()["records"] == 0
    assert rec.id in hub.ids() and store.query("SELECT count(*) FROM blobs WHERE sha256 = ?", ("ab" * 32,)) == [(1,)]


def test_a_record_an_officer_makes_stricter_between_the_plan_and_the_deletion_stays(store, monkeypatch):
    """A clear record 40 days old (past clear_days 30) whose review confirming a threat arrives after the prune
    planned it is a suspect record kept 365 days: the deletion re-checked holds and seizures only, and it went."""
    hub = Hub(store)
    hub_retention.set_policy(store, POLICY, "admin", "policy")
    rec = hub.add(Verdict.CLEAR, 40, scan="ac" * 32)
    planned = _changed_after_the_plan(monkeypatch, hub, rec.model_copy(update={"review": Review(
        officer="B-1", decided_at=rec.decided_at, outcome="threat_confirmed", label="drugs")}))
    assert hub.prune()["records"] == 0
    assert rec.id in hub.ids() and store.query("SELECT count(*) FROM blobs WHERE sha256 = ?", ("ac" * 32,)) == [(1,)]
    monkeypatch.setattr(hub_retention, "plan", planned)
    assert hub.prune()["records"] == 0 and rec.id in hub.ids()  # planned again: a suspect record, 40 days young


# ---- published risk bundles -------------------------------------------------------------------
def _publish(store, tmp_path, hub: Hub, *days_ago: float) -> list[int]:
    """Risk bundle versions published (signed, snapshot and delta) `days_ago` before the hub's NOW, in order."""
    key = risk_key(tmp_path)
    risk_tables.migrate(store)  # as the control room does at start (hub_retention.migrate does it too now)
    return [risk_publish.publish(store, key, "ada", now=hub.now - d * DAY, expiry_s=3600).version for d in days_ago]


def _versions(store) -> list[int]:
    return [row[0] for row in store.query("SELECT DISTINCT version FROM risk_bundles ORDER BY version")]


def test_a_published_risk_bundle_goes_only_once_no_record_station_or_period_keeps_it(store, tmp_path):
    """Before, risk_bundles was never pruned: every version published (snapshot and delta, MBs each) stayed for
    good. Now one goes once no record the hub keeps names it, it was superseded longer ago than the policy's
    longest class (365 days), it is not among the newest three and no station runs it; the rest stay, why counted."""
    hub = Hub(store)
    v = _publish(store, tmp_path, hub, 1000, 990, 980, 970, 960, 950, 100, 50, 1)
    held = hub.add(Verdict.CLEAR, 900, bundle=v[0])  # held: keeps bundle 1
    hub.add(Verdict.CLEAR, 900, bundle=v[4])  # pruned in the same round: bundle 5 goes with it
    young = hub.add(Verdict.CLEAR, 10, bundle=v[8])
    execute(store, "INSERT INTO stations (station, state, session, status, status_at, seen_at) VALUES (?,?,?,?,?,?)",
            ("g2", "offline", 1, json.dumps({"risk_version": v[2]}), 0.0, 0.0))  # runs bundle 3 (last status)
    store.record_bundle_ack("g3", v[3], "00" * 32, "applied", None, 0.0)  # applied bundle 4
    hub_retention.set_policy(store, POLICY, "admin", "default")
    hub_retention.place_hold(store, "record", held.id, "sup", "court order 12")
    assert hub_retention.bundle_plan(store, hub.now) == ([v[1]], {"named": 2, "running": 2, "young": 1, "newest": 3})
    bytes_before = store.query("SELECT sum(length(data)) FROM risk_bundles WHERE version IN (?,?)", (v[1], v[4]))[0][0]

    out = hub.prune()
    assert out["records"] == 1 and out["bundles"] == 2 and out["bundle_bytes"] == bytes_before
    assert _versions(store) == [v[0], v[2], v[3], v[5], v[6], v[7], v[8]]
    assert hub.ids() == {held.id, young.id}
    assert risk_publish.latest(store)["version"] == v[8]
    entry = [json.loads(e["detail"]) for e in audit.entries(store) if e["action"] == "retention.prune"][-1]
    assert entry["bundles"] == [v[1], v[4]] and entry["bundle_bytes"] == bytes_before
    assert hub.prune()["bundles"] == 0
    fig = hub_retention.figures(store, hub.now)["risk_bundles"]
    assert fig["versions"] == 7 and fig["next_prune"] == {"versions": 0, "kept": {"named": 1, "running": 2,
                                                                                  "young": 1, "newest": 3}}


def test_the_newest_bundle_is_never_pruned_and_nothing_goes_without_a_finite_period(store, tmp_path):
    hub = Hub(store)
    v = _publish(store, tmp_path, hub, 1000, 900, 800)
    assert hub_retention.prune_bundles(store, hub.now, keep_newest=0) == ([], 0, 0)  # no policy: all stay
    hub_retention.set_policy(store, retention.RetentionPolicy(clear_days=30, suspect_days=None, manual_days=365),
                             "admin", "suspects kept for good")
    assert hub_retention.prune_bundles(store, hub.now, keep_newest=0) == ([], 0, 0)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    assert hub_retention.prune_bundles(store, hub.now, keep_newest=0)[0] == [v[0], v[1]]
    assert _versions(store) == [v[2]]  # the newest, though superseded by nothing and older than any period
    assert risk_publish.latest_offer(store).version == v[2]


def test_a_record_naming_a_bundle_stored_between_the_plan_and_the_deletion_keeps_it(store, tmp_path, monkeypatch):
    hub = Hub(store)
    v = _publish(store, tmp_path, hub, 1000, 990, 980, 970, 1)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    real = hub_retention.bundle_plan

    def plan_then_ingest(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out = real(*args, **kwargs)
        hub.add(Verdict.SUSPECT, 10, bundle=v[0])  # a station's late record, assessed with bundle 1
        return out
    monkeypatch.setattr(hub_retention, "bundle_plan", plan_then_ingest)
    versions, rows, _ = hub_retention.prune_bundles(store, hub.now)
    assert (versions, rows) == ([v[1]], 2)  # bundle 2's snapshot and delta; bundle 1 stays
    assert _versions(store) == [v[0], v[2], v[3], v[4]]


def test_records_stored_before_the_column_keep_their_bundle_once_the_hub_migrates(store, tmp_path):
    """A hub upgraded from before `records.risk_bundle` fills it from the bodies (migration 2), so the records it
    already held keep the bundles they name."""
    hub = Hub(store)
    v = _publish(store, tmp_path, hub, 1000, 990, 980, 970, 1)
    named = hub.add(Verdict.SUSPECT, 10, bundle=v[1])
    hub.add(Verdict.CLEAR, 10)
    execute(store, "UPDATE records SET risk_bundle = NULL")
    execute(store, "DELETE FROM hub_migrations WHERE number = 2")
    store.migrate()
    assert store.query("SELECT id, risk_bundle FROM records WHERE risk_bundle IS NOT NULL") == [(named.id, v[1])]
    hub_retention.set_policy(store, POLICY, "admin", "default")
    assert hub_retention.prune_bundles(store, hub.now)[0] == [v[0]]
    assert _versions(store) == v[1:]


def test_old_records_that_must_stay_do_not_stop_the_prune_from_reaching_those_behind_them(store):
    """Before, a round read at most 20 pages of candidates from the oldest: once that many old records all had to
    stay (unreleased seizures by review, confirmed threats within their days; 10,000 at the hub's page of 500)
    nothing behind them was ever pruned again. Now each round reads on from where the last stopped."""
    hub = Hub(store)
    seized = [hub.add(Verdict.CLEAR, 400 - i / 100, review=Review(
        officer="B-1", decided_at=make_record("g1", 1).decided_at, outcome="override",
        search=SearchResult(outcome="seized"))) for i in range(25)]
    behind = hub.add(Verdict.CLEAR, 40)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    pruned = [hub_retention.prune(store, now=hub.now, limit=1)["records"] for _ in range(3)]  # 20 pages of 1 a round
    assert sum(pruned) == 1 and behind.id not in hub.ids()
    assert hub.ids() == {rec.id for rec in seized}


def _chunks(store, hub: Hub, data: bytes) -> str:
    """The image `data` synced by station g1 as it sends images (chunks on the image lane, after its records)."""
    sha = hashlib.sha256(data).hexdigest()
    h = p.BlobChunkHeader(station="g1", msg=500 + hub.seq, seq=1, record_id="r1", sha256=sha, index=0, count=1,
                          size=len(data), chunk_sha256=sha)
    hub.ingest.handle([(p.blob_topic("g1", sha, 0), p.encode_chunk(h, data))])
    assert store.image(sha) == data
    return sha


def test_a_scan_that_arrives_after_its_record_was_pruned_goes_too(store):
    """A station back after 40 days offline sends its records first and its scans after (the image lane is
    last): before, a clear record pruned before its scan arrived left the scan (MBs) in `blobs` for good, named
    by nothing. Now the prune remembers the scans it could not delete and deletes them once they arrive; a scan a
    kept record names stays."""
    hub = Hub(store)
    late_scan, kept_scan, photo, shared = b"npz-late" * 100, b"npz-kept" * 100, b"\xff\xd8\xff\xe0a", b"\xff\xd8\xff\xe0b"
    hub_retention.set_policy(store, POLICY, "admin", "default")
    rec = hub.add_with_scan(Verdict.CLEAR, 40, hashlib.sha256(late_scan).hexdigest())
    kept = hub.add_with_scan(Verdict.CLEAR, 10, hashlib.sha256(kept_scan).hexdigest())
    searched = SearchReport(version=1, vehicle_type="van", minutes=10, outcome="nothing_found",
                            officer=_signature("officer"))
    photos = [hashlib.sha256(photo).hexdigest(), hashlib.sha256(shared).hexdigest()]
    searched_old = hub.add(Verdict.CLEAR, 40, reports=[_signed(searched.model_copy(update={"photos": photos}))])
    hub.add(Verdict.CLEAR, 5, reports=[_signed(searched.model_copy(update={"photos": photos[1:]}))])
    out = hub.prune()
    assert out["records"] == 2 and out["scans"] == 0 and out["photos"] == 0
    assert rec.id not in hub.ids() and searched_old.id not in hub.ids()
    sha = _chunks(store, hub, late_scan)
    kept_sha = _chunks(store, hub, kept_scan)
    for data in (photo, shared):
        _chunks(store, hub, data)
    out = hub.prune()
    assert store.image(sha) is None and store.image(kept_sha) == kept_scan
    assert store.image(photos[0]) is None and store.image(photos[1]) == shared  # a kept report names it
    assert out["late_images"] == 2
    assert kept.id in hub.ids() and hub.prune()["late_images"] == 0


# ---- the released seizures the state lists ----------------------------------------------------
def _seizure(hub: Hub, days: float, released_days_ago: float) -> InspectionRecord:
    """A seizure `days` old that a supervisor released `released_days_ago` before the hub's NOW."""
    rec = hub.add(Verdict.MANUAL, days, reports=[SEIZURE])
    hub_retention.release_seizure(hub.store, rec.id, "sup", "case closed")
    execute(hub.store, "UPDATE seizure_releases SET released_at = ? WHERE record_id = ?",
            (hub.now - released_days_ago * DAY, rec.id))
    return rec


def test_a_released_seizure_leaves_the_state_once_no_station_may_hold_it_and_the_hub_pruned_it(store):
    """Before, every release stayed in the state for good (past about 92,000 it passed the 4 MiB limit, at 100,001
    it failed validation and nothing was published again). Now an id is left out once the hub pruned the record and
    the release is older than suspect_days (365) + RELEASE_GRACE_DAYS (30); never with suspect records kept for good."""
    hub = Hub(store)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    gone_long_ago = _seizure(hub, 800, 396)
    gone_recently = _seizure(hub, 800, 394)
    held = _seizure(hub, 800, 700)
    hub_retention.place_hold(store, "record", held.id, "sup", "court order 4")
    assert hub.prune()["records"] == 2 and hub.ids() == {held.id}
    assert hub_retention.state(store, 1, hub.now).released == sorted([gone_recently.id, held.id])
    assert hub_retention.state(store, 1, hub.now - 2 * DAY).released == sorted([gone_long_ago.id, gone_recently.id,
                                                                                  held.id])
    key = Ed25519PrivateKey.generate()
    hub_retention.publish(store, key, hub.now)
    assert not hub_retention.unpublished(store, hub.now)
    assert hub_retention.unpublished(store, hub.now + 2 * DAY)  # gone_recently aged out: the next round publishes
    hub_retention.set_policy(store, retention.RetentionPolicy(clear_days=30, suspect_days=None, manual_days=365),
                             "admin", "suspects kept for good")
    assert len(hub_retention.state(store, 1, hub.now + 5000 * DAY).released) == 3


def _releases(store, n: int, width: int, first: int = 1) -> None:
    """`n` released seizures the hub pruned long ago, ids `width` characters long."""
    execute(store, "WITH RECURSIVE n(i) AS (SELECT CAST(? AS INTEGER) UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                   " INSERT INTO seizure_releases (record_id, released_by, released_at, reason)"
                   f" SELECT '{'0' * (width - 7)}' || (1000000 + i), 'sup', 0, 'closed' FROM n", (first, first + n - 1))


def test_a_state_over_its_limits_is_refused_with_its_values_and_the_published_one_stays(store):
    """Before, 95,000 released ids of 50 characters made a 5 MB state whose signing failed (the envelope's 4 MiB),
    and at 100,001 the state itself failed validation: every later hold failed to publish, and the control room's
    retention round stopped before the hub's prune. Now a state over a limit is refused with its values and the
    newest published state stays; the hub still prunes by the whole list."""
    hub = Hub(store)  # no policy: every release stays listed
    key = Ed25519PrivateKey.generate()
    hub_retention.place_hold(store, "plate", "AB1234", "sup", "court order 1")
    first = hub_retention.publish(store, key)[1]
    _releases(store, 95_000, 50)
    with pytest.raises(retention.RetentionError, match=r"retention state 2 is \d+ bytes \(1 holds, 95000 released"
                                                        r" seizures\), over the limit of 4194304") as refused:
        hub_retention.publish(store, key)
    assert refused.value.code == "too_large" and hub_retention.latest_signed(store) == (1, first)
    _releases(store, 5_001, 50, first=95_001)
    with pytest.raises(retention.RetentionError, match="lists 1 holds and 100001 released seizures, over the limit"
                                                       " of 100000 each"):
        hub_retention.publish(store, key)
    assert hub_retention.unpublished(store) and hub_retention.latest_signed(store) == (1, first)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    rec = _seizure(hub, 400, 399)
    assert hub.prune()["records"] == 1 and rec.id not in hub.ids()  # released, by the list no station gets
    assert hub_retention.publish(store, key, hub.now)[0].released == []  # all of them pruned long ago: left out


def test_an_image_that_never_arrives_is_no_longer_awaited_after_pruned_blobs_keep_days(store):
    """Before, the prune remembered for good every image it could not delete (`pruned_blobs`), and one that never
    came (a scan the station dropped at its cap) kept its row for good. Now a row goes PRUNED_BLOBS_KEEP_DAYS (90)
    after the prune, counted; an image arriving within them is still deleted on arrival."""
    hub = Hub(store)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    never, late = (hashlib.sha256(data).hexdigest() for data in (b"npz-never", b"npz-late"))
    hub.add_with_scan(Verdict.CLEAR, 40, never)
    hub.add_with_scan(Verdict.CLEAR, 40, late)
    assert hub.prune()["records"] == 2

    def awaited() -> set[str]:
        return {row[0] for row in store.query("SELECT sha256 FROM pruned_blobs")}
    assert awaited() == {never, late}
    hub_retention.prune(store, now=hub.now + 89 * DAY)
    assert awaited() == {never, late}
    _chunks(store, hub, b"npz-late")
    assert hub_retention.prune(store, now=hub.now + 89.5 * DAY)["late_images"] == 1 and awaited() == {never}
    out = hub_retention.prune(store, now=hub.now + 90.5 * DAY)
    assert awaited() == set() and out["pruned_blobs_expired"] == 1


def test_a_record_naming_a_bundle_committed_while_the_bundle_is_deleted_keeps_it_on_postgresql(pg_url, tmp_path):
    """PostgreSQL reads by the snapshot each statement starts with: a station's record naming bundle 1, written by an
    ingest still in its transaction when the prune's DELETE ran, was not seen by the DELETE's NOT EXISTS, and the
    bundle went though the record (committed a moment later) names it. Now the DELETE's transaction first waits for
    the writers of `records` (LOCK ... IN SHARE MODE) and then sees the record. (SQLite has one writer at a time.)"""
    import threading

    import psycopg

    store = open_store(pg_url)
    hub_retention.migrate(store)
    hub = Hub(store)
    v = _publish(store, tmp_path, hub, 1000, 990, 980, 970, 1)
    rec = hub.add(Verdict.SUSPECT, 10)
    hub_retention.set_policy(store, POLICY, "admin", "default")
    ingest = psycopg.connect(pg_url)  # a transaction of its own, as another hub process's ingest
    ingest.execute("UPDATE records SET risk_bundle = %s WHERE id = %s", (v[0], rec.id))
    done: list = []
    pruning = threading.Thread(target=lambda: done.append(hub_retention.prune_bundles(store, hub.now)))
    pruning.start()
    watch = psycopg.connect(pg_url, autocommit=True)
    for _ in range(1000):  # until the prune is done or waits for the ingest's lock
        if done or watch.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'records'::regclass"
                                 ).fetchone()[0]:
            break
        pruning.join(0.01)
    ingest.commit()
    pruning.join(30)
    assert done and done[0][0] == [v[1]]
    assert _versions(store) == [v[0], v[2], v[3], v[4]]  # bundle 1 stays: the record names it
    for conn in (ingest, watch):
        conn.close()
    store.close()


def test_a_signed_state_larger_than_a_broker_packet_is_refused_before_it_is_stored(store):
    """The shipped broker carries packets of at most 2 MiB (max_packet_size), stations accept states up to 4 MiB:
    a state between the two was stored as the newest version and then refused by the broker, so stations kept the
    one before while the hub listed the new one as published. Now it is refused before it is stored."""
    Hub(store)  # no policy: every release stays listed
    key = Ed25519PrivateKey.generate()
    first = hub_retention.publish(store, key)[1]
    _releases(store, 45_000, 50)  # about 2.4 MB signed: under the station's 4 MiB, over the broker's packet
    with pytest.raises(retention.RetentionError, match=r"signed retention state 2 is \d+ bytes \(0 holds, 45000"
                                                        r" released seizures\), over the 2031616 bytes one broker"
                                                        r" packet may carry") as refused:
        hub_retention.publish(store, key)
    assert refused.value.code == "too_large" and hub_retention.latest_signed(store) == (1, first)
