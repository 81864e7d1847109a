"""The rule language: every op on scalar and list facts, nesting, unknown facts, and refusals naming the rule."""

from __future__ import annotations

from typing import Any

import pytest

from risk.errors import RuleError
from risk.rules import FACTS, Rule, compile_rules

VIEW: dict[str, Any] = {
    "listed": {"plate"}, "identity.plate": ["AB1234"], "identity.container": ["CSQU3054383", "MSKU9070323"],
    "declaration.present": True, "declaration.trader": "CN0000000042", "declaration.hs": ["240220", "870323"],
    "declaration.declared_empty": False, "declaration.weight_kg": 12000.0, "declaration.origin": "VN",
    "history.passes": 3, "history.seizures": 0, "history.last_outcome": None, "time.hour": 2, "time.weekday": 6,
    "station.id": "gantry-1", "station.kind": "gantry", "detector.verdict": "clear", "detector.labels": [],
    "detector.load_present": True, "route": "VNHK",
}


def holds(when: dict[str, Any], view: dict[str, Any] | None = None) -> bool:
    rules = compile_rules([{"id": "r", "when": when, "lane": "red", "score": 1}])
    return [r.id for r in rules.fired(view or VIEW)] == ["r"]


def fact(name: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"fact": name, "op": op, "value": value} if op != "present" or value is not None else \
        {"fact": name, "op": op}


@pytest.mark.parametrize(("when", "expected"), [
    (fact("declaration.trader", "eq", "CN0000000042"), True), (fact("declaration.trader", "eq", "cn 0000000042"), True),
    (fact("declaration.trader", "eq", "CN1"), False), (fact("declaration.trader", "ne", "CN1"), True),
    (fact("declaration.trader", "ne", "CN0000000042"), False),
    (fact("declaration.origin", "in", ["CO", "VN"]), True), (fact("declaration.origin", "in", ["CO"]), False),
    (fact("station.id", "prefix", "gantry-"), True), (fact("station.id", "prefix", "conveyor"), False),
    (fact("declaration.weight_kg", "gte", 12000), True), (fact("declaration.weight_kg", "gte", 12000.5), False),
    (fact("declaration.weight_kg", "lte", 12000), True), (fact("declaration.weight_kg", "lte", 11999), False),
    (fact("time.hour", "between", [0, 4]), True), (fact("time.hour", "between", [3, 4]), False),
    (fact("declaration.declared_empty", "eq", False), True), (fact("detector.load_present", "eq", True), True),
    (fact("history.last_outcome", "present"), False), (fact("history.last_outcome", "present", False), True),
    (fact("declaration.trader", "present"), True),
    # list facts: any element
    (fact("identity.container", "eq", "MSKU 907032 3"), True), (fact("identity.container", "eq", "X"), False),
    (fact("identity.container", "ne", "MSKU9070323"), False), (fact("identity.plate", "ne", "ZZ1"), True),
    (fact("identity.container", "in", ["X", "CSQU3054383"]), True), (fact("identity.container", "in", ["X"]), False),
    (fact("declaration.hs", "prefix", "2402"), True), (fact("declaration.hs", "prefix", "8703.2"), True),
    (fact("declaration.hs", "prefix", "0302"), False), (fact("declaration.hs", "prefix", "0323"), False),
    (fact("detector.labels", "present"), False), (fact("detector.labels", "present", False), True),
    (fact("identity.seal", "prefix", ""), False),  # an empty list matches nothing, even the empty prefix
    ({"listed": "plate"}, True), ({"listed": "trader"}, False), ({"listed": "any"}, True),
])
def test_each_op_on_scalar_and_list_facts(when: dict[str, Any], expected: bool) -> None:
    assert holds(when) is expected


@pytest.mark.parametrize("op", ["eq", "ne", "in", "prefix", "gte", "lte", "between"])
def test_an_unknown_fact_makes_every_comparison_false(op: str) -> None:
    value = {"in": ["x"], "between": [0, 1], "gte": 0, "lte": 0}.get(op, "x")
    name = "history.passes" if op in ("gte", "lte", "between") else "history.last_outcome"
    assert not holds(fact(name, op, value), VIEW | {"history.passes": None})


def test_all_any_and_not_nest() -> None:
    yes, no = fact("station.kind", "eq", "gantry"), fact("station.kind", "eq", "conveyor")
    assert holds({"all": [yes, {"any": [no, {"not": no}]}]})
    assert not holds({"all": [yes, {"any": [no, {"not": yes}]}]})
    assert holds({"not": {"all": [yes, no]}}) and not holds({"not": {"any": [yes, no]}})
    deep: dict[str, Any] = yes
    for _ in range(15):
        deep = {"all": [deep]}
    assert holds(deep)


def test_rules_fire_in_bundle_order_and_disabled_ones_never() -> None:
    rules = compile_rules([
        Rule("b", "b", "b", fact("station.kind", "eq", "gantry"), 5, "amber"),
        Rule("a", "a", "a", fact("station.kind", "eq", "gantry"), 5, "red"),
        Rule("off", "off", "off", fact("station.kind", "eq", "gantry"), 5, "red", enabled=False),
    ])
    assert [r.id for r in rules.fired(VIEW)] == ["b", "a"]


def test_a_value_is_never_code() -> None:
    trick = "x') or True or ('"
    assert not holds(fact("declaration.trader", "eq", trick))
    rules = compile_rules([{"id": "t", "lane": "red", "when": fact("declaration.trader", "eq", trick)}])
    assert trick not in rules.source


@pytest.mark.parametrize(("rule", "words"), [
    ({"id": "R1", "lane": "red"}, "no condition"),
    ({"id": "R1", "lane": "blue", "when": {"listed": "any"}}, "lane must be"),
    ({"id": "R1", "lane": "red", "score": "high", "when": {"listed": "any"}}, "score must be an integer"),
    ({"id": "R1", "lane": "red", "when": {"listed": "any"}, "colour": 1}, "unknown field(s) colour"),
    ({"id": "", "lane": "red", "when": {"listed": "any"}}, "no id"),
    ({"id": "R1", "lane": "red", "when": {"listed": "passport"}}, "'listed' names a list kind"),
    ({"id": "R1", "lane": "red", "when": {"fact": "declaration.colour", "op": "eq", "value": 1}}, "unknown fact"),
    ({"id": "R1", "lane": "red", "when": fact("station.id", "like", "x")}, "unknown op 'like'"),
    ({"id": "R1", "lane": "red", "when": {"fact": "station.id", "op": "eq"}}, "needs a value"),
    ({"id": "R1", "lane": "red", "when": fact("station.id", "gte", 3)}, "compares numbers"),
    ({"id": "R1", "lane": "red", "when": fact("history.passes", "gte", "3")}, "needs a number"),
    ({"id": "R1", "lane": "red", "when": fact("history.passes", "between", [5, 1])}, "low <= high"),
    # OverflowError (HTTP 500) when the rule was checked; infinity (JSON 1e999) passed the check, not the draft
    ({"id": "R1", "lane": "red", "when": fact("declaration.weight_kg", "between", [0, 10**400])}, "finite"),
    ({"id": "R1", "lane": "red", "when": fact("declaration.weight_kg", "between", [0, float("inf")])}, "finite"),
    ({"id": "R1", "lane": "red", "when": fact("history.passes", "gte", float("nan"))}, "finite"),
    ({"id": "R1", "lane": "red", "when": fact("history.passes", "in", [1, 10**400])}, "list of float values"),
    ({"id": "R1", "lane": "red", "when": fact("history.passes", "prefix", "1")}, "is not text"),
    ({"id": "R1", "lane": "red", "when": fact("station.id", "in", [])}, "non-empty list"),
    ({"id": "R1", "lane": "red", "when": fact("detector.load_present", "eq", "yes")}, "a bool value"),
    ({"id": "R1", "lane": "red", "when": {"all": []}}, "non-empty list of conditions"),
    ({"id": "R1", "lane": "red", "when": {"all": [{"listed": "any"}], "not": {"listed": "any"}}}, "exactly one"),
    ({"id": "R1", "lane": "red", "when": {"maybe": {"listed": "any"}}}, "unknown condition 'maybe'"),
    ({"id": "R1", "lane": "red", "when": []}, "must be an object"),
    ({"id": "R1", "lane": "red", "when": {"all": [{}]}}, "non-empty object"),
    ({"id": "R1", "lane": "red", "when": {"fact": "station.id", "op": "eq", "value": "x", "why": 1}}, "only fact"),
])
def test_a_bad_rule_is_one_sentence_naming_the_rule(rule: dict[str, Any], words: str) -> None:
    with pytest.raises(RuleError) as info:
        compile_rules([rule])
    message = str(info.value)
    assert words in message and "\n" not in message
    assert message.startswith(f"rule {rule['id']!r}:")


def test_nesting_beyond_the_limit_and_duplicate_ids_are_refused() -> None:
    deep: dict[str, Any] = {"listed": "any"}
    for _ in range(20):
        deep = {"not": deep}
    with pytest.raises(RuleError, match="nested deeper"):
        compile_rules([{"id": "deep", "lane": "red", "when": deep}])
    with pytest.raises(RuleError, match="used by another rule"):
        compile_rules([{"id": "x", "lane": "red", "when": {"listed": "any"}}] * 2)


def test_every_fact_the_engine_provides_can_be_named() -> None:
    for name, kind in FACTS.items():
        value = {"num": 1, "bool": True, "str": "x", "list": "x"}[kind]
        compile_rules([{"id": name, "lane": "amber", "when": fact(name, "eq", value)}])
