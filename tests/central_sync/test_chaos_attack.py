"""Chaos and attack together (issue 22): broker, hub and a station publisher are killed with SIGKILL in turn while
two honest stations deliver and a third station's account attacks (items 1, 2, 6, 7, 8); every honest record is at
the hub exactly once with its original body, and nothing the adversary sent was stored. Bounded by counts."""

from __future__ import annotations

import pytest

from chaos_attack_kit import ATTACKS, ChaosAttackRun, Plan

pytestmark = pytest.mark.slow


def test_kills_and_an_adversarial_station_lose_duplicate_and_let_through_nothing(tmp_path):
    plan = Plan(records=300, step=90, kills=6, min_rounds=2, item7=True)
    with ChaosAttackRun(tmp_path, str(tmp_path / "hub.db"), plan) as run:
        run.chaos()
        run.settle()
        report = run.report()
    print(report.text())
    assert (report.lost, report.duplicated, report.unexpected) == (0, 0, 0), report.text()
    assert report.kills == {"broker": 2, "hub": 2, "station": 2}
    tried = {a for a, outcomes in report.attacks.items() if outcomes}
    assert tried == set(ATTACKS), report.text()
    for attack in (ATTACKS[0], ATTACKS[2], ATTACKS[4]):  # each kind was answered "rejected" at least once
        assert report.attacks[attack]["rejected_by_hub"] > 0, report.text()
    for attack in (ATTACKS[0], ATTACKS[1], ATTACKS[3]):  # and refused by the broker at least once
        assert report.attacks[attack]["refused_by_broker"] > 0, report.text()
