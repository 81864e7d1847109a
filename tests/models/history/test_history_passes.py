"""Repeated passes of generator A (models.training.portal.passes): same vehicle, another pass, changes."""

from __future__ import annotations

import numpy as np
import pytest

from models.history.register import log_attenuation
from models.training.portal import PortalSpec, portal_scan
from models.training.portal.canvas import Sketch
from models.training.portal.generator import add_scatter, scene
from models.training.portal.passes import (MIN_KG, MIN_LITRES, Pass, body, crowd, passengers, portal_pass,
                                          portal_scatter, scatter_drift)

VAN = PortalSpec(vehicle="van", suspect=False, pixel_mm=8.0)


def test_existing_seeds_render_as_before() -> None:
    """Fingerprints of two renders taken before passes existed (issue 16's generator, this machine)."""
    van = portal_scan(11, PortalSpec(vehicle="van", pixel_mm=10.0))
    box = portal_scan(4, PortalSpec(vehicle="tractor_20ft", pixel_mm=10.0))
    assert van.shape == (814, 291) and box.shape == (2000, 600)
    assert float(van.high.mean()) == pytest.approx(43796.37034879303, rel=1e-6)
    assert float(van.low.mean()) == pytest.approx(41313.222244737706, rel=1e-6)
    assert float(box.high.mean()) == pytest.approx(35356.81423166666, rel=1e-6)
    assert van.meta["truth"][0] == {"label": "drugs", "box": [63.3, 397.2, 78.1, 514.5], "mass_kg": 42.4,
                                    "place": "cargo"}
    assert box.meta["cab_lines"] == [0, 587]


def test_a_pass_is_the_same_vehicle_on_another_drive() -> None:
    first, again = portal_pass(3, Pass(0), VAN), portal_pass(3, Pass(1), VAN)
    for key in ("vehicle", "cargo", "declared_empty", "pixel_mm", "energy_kev"):
        assert first.meta[key] == again.meta[key]
    assert first.shape[1] == again.shape[1] and first.shape[0] != again.shape[0]   # another speed profile
    assert first.meta["pass"]["fuel_level"] != again.meta["pass"]["fuel_level"]
    assert first.meta["pass"]["offset_px"] != again.meta["pass"]["offset_px"]
    assert all(abs(p["pass"]["offset_px"]) <= 4 and abs(p["pass"]["scale"] - 1) <= 0.02
               for p in (first.meta, again.meta))
    same = portal_pass(3, Pass(1), VAN)
    assert np.array_equal(same.high, again.high) and same.meta == again.meta


@pytest.mark.parametrize("what", ["added_steel", "concealment", "removed_part"])
def test_a_change_is_the_only_difference_and_lies_in_its_box(what: str) -> None:
    """The pass with a change and without it differ in the change's box (and its faint scatter) only,
    where the detector counts more than a handful (at 2–8 counts one count moves −ln T by tenths)."""
    plain = portal_pass(7, Pass(2), VAN)
    changed = portal_pass(7, Pass(2, changes=(what,)), VAN)
    truth = changed.meta["changes"][0]
    assert truth["mass_kg_fe"] >= MIN_KG
    if what == "concealment":
        assert truth["volume_l"] >= MIN_LITRES
    d = log_attenuation(changed.high) - log_attenuation(plain.high)
    c0, l0, c1, l1 = (int(round(v)) for v in truth["box"])
    inside = np.zeros(d.shape, bool)
    inside[max(l0 - 4, 0):l1 + 4, max(c0 - 4, 0):c1 + 4] = True
    counted = (plain.high >= 50) & (changed.high >= 50)
    assert np.abs(d[~inside & counted]).max() < 0.05 * np.abs(d[inside]).max()
    sign = np.sign(d[inside].sum())
    assert sign == (1 if truth["kind"] == "added" else -1)


def test_changes_reach_every_location_and_stay_within_the_goals() -> None:
    seen: set[str] = set()
    for seed in range(12):
        spec = PortalSpec(vehicle=("saloon", "van")[seed % 2], suspect=False, pixel_mm=10.0)
        scan = portal_pass(seed, Pass(1, changes=("added_steel", "concealment")), spec)
        steel, hidden = scan.meta["changes"]
        assert steel["mass_kg_fe"] >= MIN_KG and hidden["volume_l"] >= MIN_LITRES
        seen |= {steel["location"], hidden["location"]}
    assert {"floor", "roof", "fuel_tank", "door", "cargo"} <= seen


def test_passengers_sit_as_people_do_head_over_torso_and_thighs_forward() -> None:
    """Each passenger is a seated body of water-like tissue in the cab: torso on the seat, the head above
    it, the thighs forward along the seat (x grows to the rear), the shins down from the knees; the
    parts' masses add up to one person's (45–125 kg); everyone sits on one of the vehicle's seat rows."""
    v = scene(np.random.default_rng(4), PortalSpec(vehicle="mpv", suspect=False)).vehicle
    people = 0
    for seed in range(10):
        sk = Sketch()
        n = passengers(sk, np.random.default_rng(seed), v)
        assert len(sk.ops) == 4 * n
        for k in range(n):
            (torso, head, thighs, shins) = [args[1] for _, args, _ in sk.ops[4 * k:4 * k + 4]]
            assert all(args[0] == "water" for _, args, _ in sk.ops[4 * k:4 * k + 4])
            assert head[1] >= torso[3] and torso[0] <= head[0] < head[2] <= torso[2]
            assert thighs[2] <= torso[0] and thighs[1] == torso[1]            # forward, on the seat
            assert shins[3] == thighs[1] and shins[0] == thighs[0]          # down from the knee
            assert v.cab[0] <= thighs[0] and torso[2] <= v.cab[1] + 500
            assert any(thighs[1] == top and front <= torso[2] <= front + 620 for front, top in v.seats)
            kg = sum(a[2] * (a[1][2] - a[1][0]) * (a[1][3] - a[1][1]) * 1e-6 * np.pi / 4
                     for _, a, _ in sk.ops[4 * k:4 * k + 4]) * 1.0               # water: 1 g/cm³
            assert 45 <= kg <= 127                                          # 45–125 kg, ±2 kg of clothes
        people += n
    assert people > 0


def test_the_regular_driver_recurs_and_others_come_and_go() -> None:
    """The driver's seat holds the vehicle's regular driver on most passes (the same stature, so the same
    thigh length), someone else on some, nobody on a few."""
    v = scene(np.random.default_rng(4), PortalSpec(vehicle="saloon", suspect=False)).vehicle
    regular = body(np.random.default_rng(88))
    front, top = v.seats[0]
    seen = {"regular": 0, "other": 0, "empty": 0}
    for seed in range(60):
        sk = Sketch()
        passengers(sk, np.random.default_rng(seed), v, regular)
        thighs = [args[1] for _, args, _ in sk.ops[2::4]]
        first = [t for t in thighs if front - 600 <= t[0] <= front and t[1] == top]
        if not first:
            seen["empty"] += 1
            continue
        tall = (first[0][2] - first[0][0]) / 420 * 1.75
        seen["regular" if abs(tall - regular.stature) < 1e-6 else "other"] += 1
    assert seen["regular"] > seen["other"] > 0 and seen["empty"] > 0


def test_a_crowd_seats_children_and_adults_upright_forward_or_reclined_rounded_or_flat() -> None:
    """Pass.crowd (a trial of the judge's training): people on any seat, a chance drawn per pass; children (14–45 kg)
    and adults (38–152 kg); their parts rounded or flat across their length."""
    v = scene(np.random.default_rng(4), PortalSpec(vehicle="mpv", suspect=False)).vehicle
    kgs, profiles, counts = [], set(), set()
    for seed in range(40):
        sk = Sketch()
        n = crowd(sk, np.random.default_rng(seed), v)
        assert len(sk.ops) == 4 * n and n <= 2 * len(v.seats)
        counts.add(n)
        for k in range(n):
            parts = sk.ops[4 * k:4 * k + 4]
            profiles.add(parts[0][2].get("profile_x"))
            mean = np.pi / 4 if parts[0][2].get("profile_x") == "round" else 1.0
            kgs.append(sum(a[2] * (a[1][2] - a[1][0]) * (a[1][3] - a[1][1]) * 1e-6 * mean for _, a, _ in parts))
    assert 0 in counts and max(counts) >= 4
    assert profiles == {"round", None}
    assert min(kgs) < 45 and max(kgs) > 100 and 13.9 <= min(kgs) and max(kgs) <= 152.1


def test_a_crowded_pass_is_the_same_pass_with_more_people() -> None:
    """The crowd is drawn from its own stream: the same speed profile, warp, fuel and noise; the scan
    differs only around the seats (van seed 5, pass 3: one more person; lines 38–486 of 1024, the rear
    of the van to the last bit the same)."""
    plain, crowded = portal_pass(5, Pass(3), VAN), portal_pass(5, Pass(3, crowd=True), VAN)
    assert plain.shape == crowded.shape == (1024, 359)
    assert crowded.meta["pass"]["passengers"] == plain.meta["pass"]["passengers"] + 1
    assert {k: v for k, v in crowded.meta["pass"].items() if k != "passengers"} == \
        {k: v for k, v in plain.meta["pass"].items() if k != "passengers"}
    d = np.abs(log_attenuation(crowded.high) - log_attenuation(plain.high)).max(axis=1)
    assert d.max() > 1.0                                      # a person
    assert d[:30].max() == 0 and d[520:].max() == 0


def test_another_pass_s_scatter_moves_dense_parts_by_tenths_and_light_ones_hardly() -> None:
    t = np.full((400, 300), 0.6, np.float32)                    # light: −ln T ≈ 0.5
    t[100:300, 100:200] = 0.002                                 # a dense load: −ln T ≈ 6.2
    t = add_scatter(t, 0.03, 25.0)
    moved = [scatter_drift(t, np.random.default_rng(s), 0.03, 0.03, 25.0) for s in range(8)]
    dense = [float(np.median(np.abs(np.log(t[150:250, 130:170]) - np.log(m[150:250, 130:170])))) for m in moved]
    light = [float(np.median(np.abs(np.log(t[:60, :]) - np.log(m[:60, :])))) for m in moved]
    assert max(dense) > 0.1 and max(light) < 0.02
    assert all(m.min() > 0 for m in moved)


def test_a_tube_portal_scatters_its_own_share_on_every_pass() -> None:
    """Each seed's X-ray tube portal draws its scatter (1.5–6 %, the low channel 1.0–1.2 × the high);
    every pass of the seed goes through that portal; a portal that scatters less keeps more contrast
    behind a dense part."""
    draws = [portal_scatter(seed, light=True) for seed in range(200)]
    highs = [h for h, _ in draws]
    assert 0.015 <= min(highs) < 0.025 and 0.05 < max(highs) <= 0.06
    assert all(h <= lo <= 1.2 * h + 1e-12 for h, lo in draws)
    assert portal_scatter(5, light=False) == portal_scatter(6, light=False)     # a linac keeps render's
    light = next(seed for seed in range(50) if portal_pass(seed, Pass(0), VAN).meta["energy_kev"] < 1000)
    passes = [portal_pass(light, Pass(k), VAN).meta["pass"]["scatter"] for k in (0, 1)]
    assert passes[0] == passes[1] == [round(f, 4) for f in portal_scatter(light, True)]
    t = np.full((400, 300), 0.6, np.float32)
    t[100:300, 100:200] = 0.002
    t = add_scatter(t, 0.05, 25.0)
    clean, hazy = (scatter_drift(t, np.random.default_rng(1), 0.05, drawn, 25.0) for drawn in (0.015, 0.06))
    dense = np.s_[150:250, 130:170]
    assert float(np.median(-np.log(clean[dense]))) > float(np.median(-np.log(t[dense]))) + 0.3
    assert float(np.median(-np.log(hazy[dense]))) < float(np.median(-np.log(t[dense])))
