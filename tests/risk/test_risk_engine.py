"""The station's evaluation: watchlists, validity, deltas, declarations, fail-safes and random selection."""

from __future__ import annotations

import pytest
from risk_factories import DAY, T0, opened, snapshot_doc, state_of

from models.stats import wilson
from risk.bundle import CLOCK_SKEW_S, Declaration, RandomPolicy, WatchEntry, bundle_dict
from risk.engine import BundleState, Engine, Facts, draw
from risk.errors import BundleError
from risk.rules import Rule


def lanes_of(engine: Engine, *identities: tuple[str, str], at: float = T0, **facts: object) -> tuple[str, set[str]]:
    a = engine.evaluate(Facts("item-1", at, identities, "gantry-1", "gantry", **facts))  # type: ignore[arg-type]
    return a.lane, {f.id for f in a.fired if f.kind != "random"}


def quiet(state: BundleState) -> Engine:
    """An engine whose random draw never selects item-1 (the draw is checked on its own below)."""
    seed = next(s for s in (f"s{i}" for i in range(100)) if draw(s, "item-1", 0.2).value > 0.2)
    return Engine(state, seed=seed)


def test_a_listed_plate_as_read_at_the_lane_is_red_with_the_lists_reason() -> None:
    engine = quiet(state_of())
    a = engine.evaluate(Facts("item-1", T0, (("plate", "ab-1234"),), "gantry-1", "gantry"))
    assert a.lane == "red" and a.bundle_version == 1 and not a.stale
    hit = next(f for f in a.fired if f.kind == "watchlist")
    assert (hit.id, hit.reason, hit.lane, hit.score) == ("plate:stolen", "watch.stolen_vehicle", "red", 100)
    assert lanes_of(engine, ("plate", "ZZ9999")) == ("green", set())


def test_a_list_may_give_amber_and_carries_its_need_to_know_level() -> None:
    engine = quiet(state_of())
    assert lanes_of(engine, ("container", "CSQU3054383")) == ("amber", {"container:smuggling"})
    tag = engine.evaluate(Facts("item-1", T0, (("rfid_tid", "E280116000000001"),)))
    assert [f.level for f in tag.fired if f.kind == "watchlist"] == [2]


def test_watchlist_entries_hit_only_inside_their_validity_period_with_the_clock_allowance() -> None:
    """Before, a station whose clock was 1 s behind let a vehicle through whose entry had just come into force
    (and one 1 s ahead, whose entry had not yet ended); now the entry counts CLOCK_SKEW_S either side, the
    allowance a bundle's issue time gets, as a hit only makes the verdict stricter."""
    entry = WatchEntry("plate", "VP 1", "temp", "watch.temp", "police", valid_from=T0, valid_to=T0 + DAY)
    engine = quiet(state_of(snapshot_doc(entries=[entry])))
    assert lanes_of(engine, ("plate", "VP1"), at=T0 - CLOCK_SKEW_S - 1)[0] == "green"
    assert lanes_of(engine, ("plate", "VP1"), at=T0 - 60)[0] == "red"  # the station's clock a minute behind
    assert lanes_of(engine, ("plate", "VP1"), at=T0 - CLOCK_SKEW_S)[0] == "red"
    assert lanes_of(engine, ("plate", "VP1"), at=T0 + DAY + 60)[0] == "red"  # a minute ahead, the entry not yet ended
    assert lanes_of(engine, ("plate", "VP1"), at=T0 + DAY + CLOCK_SKEW_S)[0] == "red"
    assert lanes_of(engine, ("plate", "VP1"), at=T0 + DAY + CLOCK_SKEW_S + 1)[0] == "green"


def test_the_declaration_is_found_by_container_and_its_trader_and_goods_feed_the_rules() -> None:
    engine = quiet(state_of())
    lane, fired = lanes_of(engine, ("container", "MSKU 907032 3"))
    assert lane == "red" and fired == {"trader:traders", "R-tobacco"}


def test_a_container_declared_empty_with_a_load_is_red() -> None:
    engine = quiet(state_of())
    assert lanes_of(engine, ("container", "TGHU0000010"), load_present=True) == ("red", {"declared_empty_not_empty"})
    assert lanes_of(engine, ("container", "TGHU0000010"), load_present=False)[0] == "green"
    assert lanes_of(engine, ("container", "TGHU0000010"), load_present=None)[0] == "green"


def test_time_and_history_facts_in_the_stations_time_zone() -> None:
    engine = Engine(state_of(), seed=quiet(state_of()).seed, tz="Asia/Hong_Kong")
    two_am_hk = T0 + 18 * 3600  # 18:00 UTC = 02:00 in Hong Kong
    assert lanes_of(engine, at=two_am_hk, history_seizures=1) == ("amber", {"R-night"})
    assert lanes_of(engine, at=T0 + 12 * 3600, history_seizures=1)[0] == "green"


def test_a_delta_adds_and_removes_entries_on_a_new_state_and_leaves_the_old_one_alone() -> None:
    v1 = state_of()
    delta = bundle_dict(version=2, kind="delta", base_version=1, issued_at=T0, expires_at=T0 + 2 * DAY,
                        entries=[WatchEntry("plate", "NEW 1", "stolen", "watch.stolen_vehicle", "police")],
                        removed=[("plate", "AB 1234")], rules_changed=False)
    v2 = v1.apply(opened(delta, current=1))
    assert (v1.version, v2.version, v2.expires_at) == (1, 2, T0 + 2 * DAY)
    assert [m.list_id for m in v1.lookup("plate", "AB1234")] == ["stolen"] and v1.lookup("plate", "NEW1") == []
    assert v2.lookup("plate", "AB1234") == [] and [m.list_id for m in v2.lookup("plate", "NEW1")] == ["stolen"]
    assert v2.lookup("container", "CSQU3054383") and v2.rules is v1.rules and v2.entries == v1.entries
    with pytest.raises(BundleError) as info:
        v1.apply(opened(delta, current=1)).apply(opened(delta, current=1))
    assert info.value.code == "base_mismatch"


def test_removing_most_entries_compacts_the_index_and_keeps_the_rest_exact() -> None:
    many = [WatchEntry("plate", f"P{i}", "bulk", "watch.bulk", "police") for i in range(1000)]
    v1 = state_of(snapshot_doc(entries=many))
    delta = bundle_dict(version=2, kind="delta", base_version=1, issued_at=T0, expires_at=T0 + DAY,
                        entries=[WatchEntry("plate", "P5", "other", "watch.other", "customs")],
                        removed=[("plate", f"P{i}") for i in range(900)], rules_changed=False)
    v2 = v1.apply(opened(delta, current=1))
    assert v2.entries == 101 and len(v2.lists["plate"].blob) < len(v1.lists["plate"].blob) // 2
    assert [m.list_id for m in v2.lookup("plate", "P5")] == ["other"]
    assert all(v2.lookup("plate", f"P{i}") for i in range(900, 1000)) and not v2.lookup("plate", "P899")


def test_one_value_on_two_lists_gives_two_hits() -> None:
    both = [WatchEntry("plate", "AB1234", "stolen", "watch.a", "police"),
            WatchEntry("plate", "AB1234", "wanted", "watch.b", "customs", lane="amber")]
    assert sorted(m.list_id for m in state_of(snapshot_doc(entries=both)).lookup("plate", "AB1234")) == [
        "stolen", "wanted"]


def test_no_bundle_means_every_item_is_at_least_amber() -> None:
    a = Engine(seed="x").evaluate(Facts("item-1", T0, (("plate", "AB1234"),)))
    assert a.lane in ("amber", "red") and a.bundle_version is None
    assert [f.kind for f in a.fired][:1] == ["no_bundle"]


def test_an_expired_bundle_is_stale_and_raises_the_random_rate() -> None:
    engine = quiet(state_of())
    fresh = engine.evaluate(Facts("item-1", T0))
    old = engine.evaluate(Facts("item-1", T0 + DAY))
    assert not fresh.stale and fresh.random_draw is not None and fresh.random_draw.rate == 0.02
    assert old.stale and old.random_draw is not None and old.random_draw.rate == 0.10
    assert "stale" in {f.kind for f in old.fired} and old.bundle_version == 1


def test_a_bundle_issued_after_the_stations_clock_is_stale_beyond_the_clock_skew() -> None:
    """A station whose clock is behind (booted before it was set, a flat clock battery) opens its stored bundle
    issued "in the future" and refuses every newer one as not_yet_valid: it ran on it, not stale, with the normal
    random rate and risk_stale false, for as long as its clock was behind, however old the bundle really was."""
    engine = quiet(state_of())  # issued at T0 - 60
    within = engine.evaluate(Facts("item-1", T0 - 60 - CLOCK_SKEW_S))
    behind = engine.evaluate(Facts("item-1", T0 - 61 - CLOCK_SKEW_S))
    assert not within.stale and within.random_draw is not None and within.random_draw.rate == 0.02
    assert behind.stale and behind.random_draw is not None and behind.random_draw.rate == 0.10
    assert "stale" in {f.kind for f in behind.fired} and behind.bundle_version == 1


def test_the_random_draw_is_reproducible_from_the_seed_and_the_item() -> None:
    assert draw("gantry-1", "item-7", 0.1) == draw("gantry-1", "item-7", 0.1)
    assert draw("gantry-1", "item-7", 0.1).value != draw("gantry-2", "item-7", 0.1).value
    a = Engine(state_of(), seed="gantry-1").evaluate(Facts("item-7", T0))
    assert a.random_draw == draw("gantry-1", "item-7", 0.02)


@pytest.mark.parametrize(("stale", "rate"), [(False, 0.02), (True, 0.10)])
def test_the_selection_rate_over_many_items_is_the_configured_rate(stale: bool, rate: float) -> None:
    engine = Engine(state_of(), seed="audit-seed")
    n = 20_000
    at = T0 + DAY if stale else T0
    draws = [engine.evaluate(Facts(f"item-{i}", at)).random_draw for i in range(n)]
    selected = sum(d is not None and d.selected for d in draws)
    low, high = wilson(selected, n, z=3.29)  # 99.9 %
    assert low <= rate <= high, (selected, n)


def test_the_rate_may_differ_per_station_or_station_kind() -> None:
    policy = RandomPolicy(rate=0.02, stale_rate=0.1, per_lane={"conveyor": 0.05, "gantry-7": 0.5})
    state = state_of(snapshot_doc(random=policy))
    def rate(station: str, kind: str) -> float:
        rnd = Engine(state).evaluate(Facts("i", T0, station_id=station, station_kind=kind)).random_draw
        assert rnd is not None
        return rnd.rate
    assert (rate("gantry-1", "gantry"), rate("c-1", "conveyor"), rate("gantry-7", "gantry")) == (0.02, 0.05, 0.5)


def test_a_random_selection_fires_with_the_policys_lane() -> None:
    state = state_of(snapshot_doc(random=RandomPolicy(rate=1.0, lane="amber")))
    a = Engine(state).evaluate(Facts("item-1", T0))
    assert a.lane == "amber" and [f.kind for f in a.fired] == ["random"]


def test_swap_changes_the_state_evaluated_in_one_assignment() -> None:
    engine = quiet(BundleState.empty())
    assert lanes_of(engine, ("plate", "AB1234"))[0] == "amber"
    engine.swap(state_of())
    assert lanes_of(engine, ("plate", "AB1234")) == ("red", {"plate:stolen"})


def test_the_record_holds_lane_score_rules_random_and_bundle() -> None:
    rec = quiet(state_of()).evaluate(Facts("item-1", T0, (("plate", "AB1234"),))).to_record()
    assert rec["lane"] == "red" and rec["bundle"] == 1 and rec["score"] == 100
    assert rec["rules"][0] == {"id": "plate:stolen", "kind": "watchlist", "reason": "watch.stolen_vehicle",
                               "score": 100, "lane": "red", "level": 0}
    assert set(rec["random"]) == {"seed", "draw", "rate", "selected"}


def test_a_delta_replaces_rules_and_declarations_only_when_it_carries_them() -> None:
    v1 = state_of()
    night = Rule("R-any-night", "Any night crossing", "rule.night", {"fact": "time.hour", "op": "lte", "value": 4},
                 5, "amber")
    delta = bundle_dict(version=2, kind="delta", base_version=1, issued_at=T0, expires_at=T0 + DAY, rules=[night],
                        rules_changed=True, removed_declarations=["D-2"],
                        declarations=[Declaration("D-1", "HK0000000001", container="MSKU9070323", origin="HK")])
    v2 = v1.apply(opened(delta, current=1))
    assert [r.id for r in v2.rules.rules] == ["R-any-night"]
    assert set(v2.declarations) == {"D-1", "D-3"} and v2.declarations["D-1"].trader == "HK0000000001"
    engine = quiet(v2)
    assert lanes_of(engine, ("container", "MSKU9070323"), at=T0 + 3600) == ("amber", {"R-any-night"})
    assert lanes_of(engine, ("container", "TGHU0000010"), at=T0 + 12 * 3600, load_present=True)[0] == "green"
    unchanged = bundle_dict(version=3, kind="delta", base_version=2, issued_at=T0, expires_at=T0 + DAY,
                            rules=[], rules_changed=False)
    assert v2.apply(opened(unchanged, current=2)).rules is v2.rules


def test_of_two_declarations_for_one_container_the_newest_received_counts_however_they_came() -> None:
    """DEC-9000 (loaded) then DEC-1000 (declared empty): the later one in the state's order won, so a station
    on the delta (DEC-1000 added last: red) and one on the snapshot (sorted by ref: DEC-9000 last, green)
    disagreed on the same version."""
    loaded = Declaration("DEC-9000", "ACME", container="MSKU9070323", weight_kg=9000.0, received_at=T0 - 600)
    empty = Declaration("DEC-1000", "ACME", container="MSKU 907032-3", declared_empty=True, received_at=T0 - 60)
    for order in ([loaded, empty], [empty, loaded]):
        state = state_of(snapshot_doc(entries=[], rules=[], declarations=order))
        assert state.declaration((("container", "MSKU9070323"),)) == empty
        assert lanes_of(quiet(state), ("container", "MSKU9070323"), load_present=True) == (
            "red", {"declared_empty_not_empty"})
    v1 = state_of(snapshot_doc(entries=[], rules=[], declarations=[empty]))
    late = bundle_dict(version=2, kind="delta", base_version=1, issued_at=T0, expires_at=T0 + DAY,
                       rules_changed=False, declarations=[loaded])  # an older one arriving in a later delta
    assert v1.apply(opened(late, current=1)).declaration((("container", "MSKU9070323"),)) == empty


def test_a_bundle_that_does_not_say_when_declarations_were_received_opens_and_picks_one_the_same_way() -> None:
    doc = snapshot_doc(entries=[], rules=[], declarations=[
        Declaration("D-7", "ACME", plate="XY1"), Declaration("D-5", "ACME", plate="XY 1", declared_empty=True)])
    del doc["declarations_received_at"]  # a hub that predates it
    for decls in (doc["declarations"], {k: v[::-1] for k, v in doc["declarations"].items()}):
        assert state_of(doc | {"declarations": decls}).declaration((("plate", "XY1"),)).ref == "D-7"  # type: ignore[union-attr]


def test_an_item_whose_plate_or_container_read_failed_is_amber_not_clear() -> None:
    """A camera gives a failed read an empty value: it was dropped, and a listed plate read with low confidence
    was green (less strict than no bundle, amber)."""
    engine = quiet(state_of())
    assert lanes_of(engine, ("plate", "")) == ("amber", {"identity_unread"})
    assert lanes_of(engine, ("plate", "XY 1"), ("container", "")) == ("amber", {"identity_unread"})
    assert lanes_of(engine, ("plate", "XY 1")) == ("green", set())
    assert lanes_of(engine) == ("green", set())  # a bag: nothing expected
    assert lanes_of(engine, identity_expected=True) == ("amber", {"identity_unread"})  # a vehicle without any
    assert lanes_of(engine, ("rfid_tid", "E2801160"), identity_expected=True) == ("green", set())
