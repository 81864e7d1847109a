"""The rule language: JSON conditions over an item's facts, compiled once per bundle into predicates.

A rule is {"id", "name", "reason", "when", "score", "lane", "enabled"}; `when` is a condition:

    {"all": [c, ...]}   {"any": [c, ...]}   {"not": c}
    {"listed": "<list_kind>" | "any"}                      an identity of the item is on a watchlist of that kind
    {"fact": "<name>", "op": "<op>", "value": ...}         ops: eq ne in prefix gte lte between present

The facts and their types are FACTS. A list fact (identities, HS codes, detector labels) matches when
any of its elements does. A fact that is not known (None, or an empty list) makes every comparison false,
`ne` included; only `present` tests for it. Values compared with identities, traders, HS codes and routes
are normalised as the bundle's watchlists are (bundle.normalise), so "CSQU 305438 3" and "8703.23" match.
Every mistake is a RuleError naming the rule: one sentence with the offending value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from risk.errors import RuleError
from risk.normal import normalise

Lane = Literal["red", "amber", "green"]
LANES: tuple[Lane, ...] = ("green", "amber", "red")  # in order of strictness
LIST_KINDS = ("plate", "container", "rfid_tid", "seal", "trader", "route")
IDENTITY_KINDS = ("plate", "container", "rfid_tid", "rfid_epc", "em4100", "seal")
OPS = ("eq", "ne", "in", "prefix", "gte", "lte", "between", "present")
MAX_DEPTH = 16

FactType = Literal["list", "str", "num", "bool"]
FACTS: dict[str, FactType] = {
    **{f"identity.{k}": "list" for k in IDENTITY_KINDS},
    "declaration.present": "bool", "declaration.trader": "str", "declaration.hs": "list",
    "declaration.declared_empty": "bool", "declaration.weight_kg": "num", "declaration.origin": "str",
    "declaration.sealed": "bool",
    "history.passes": "num", "history.seizures": "num", "history.last_outcome": "str",
    "time.hour": "num", "time.weekday": "num", "station.id": "str", "station.kind": "str",
    "detector.verdict": "str", "detector.labels": "list", "detector.load_present": "bool", "route": "str",
}
"""Every fact a rule may name, with its type (what `Engine` puts in the view)."""
NORMALISED = {*(f"identity.{k}" for k in IDENTITY_KINDS), "declaration.trader", "declaration.hs", "route",
              "declaration.origin"}
"""Facts whose values the engine normalises; rule values for them are normalised the same way at compile time."""

View = Mapping[str, Any]
Predicate = Callable[[View], bool]
RULE_KEYS = {"id", "name", "reason", "when", "score", "lane", "enabled"}


@dataclass(frozen=True)
class Rule:
    """One rule as authored at the hub and carried in the bundle."""

    id: str
    name: str
    reason: str  # shown to officers; may be an i18n key
    when: Mapping[str, Any]
    score: int
    lane: Lane
    enabled: bool = True

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Rule:
        """A rule from its JSON form; RuleError when a field is missing, unknown or of the wrong type."""
        rid = doc.get("id") if isinstance(doc, Mapping) else None
        if not isinstance(rid, str) or not rid:
            raise RuleError(str(rid), "the rule has no id (a non-empty string)")
        extra = sorted(set(doc) - RULE_KEYS)
        if extra:
            raise RuleError(rid, f"unknown field(s) {', '.join(map(str, extra))}")
        for key, kind in (("name", str), ("reason", str), ("when", Mapping), ("enabled", bool)):
            if key in doc and not isinstance(doc[key], kind):
                raise RuleError(rid, f"field {key!r} must be {kind.__name__}, got {doc[key]!r}")
        score = doc.get("score", 0)
        if not isinstance(score, int) or isinstance(score, bool):
            raise RuleError(rid, f"score must be an integer, got {score!r}")
        lane = doc.get("lane")
        if lane not in LANES:
            raise RuleError(rid, f"lane must be one of red, amber, green, got {lane!r}")
        if "when" not in doc:
            raise RuleError(rid, "the rule has no condition ('when')")
        return cls(id=rid, name=doc.get("name", rid), reason=doc.get("reason", rid), when=doc["when"], score=score,
                   lane=lane, enabled=doc.get("enabled", True))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what bundle_dict writes)."""
        return {"id": self.id, "name": self.name, "reason": self.reason, "when": self.when, "score": self.score,
                "lane": self.lane, "enabled": self.enabled}


@dataclass(frozen=True)
class CompiledRules:
    """The enabled rules of a bundle with their predicates, in bundle order."""

    rules: tuple[Rule, ...] = ()
    predicates: tuple[Predicate, ...] = field(default=(), repr=False)

    def fired(self, view: View) -> list[Rule]:
        """The rules whose condition holds for the item's view."""
        return [rule for rule, holds in zip(self.rules, self.predicates) if holds(view)]


def compile_rules(rules: Iterable[Rule | Mapping[str, Any]]) -> CompiledRules:
    """Check and compile every rule (disabled ones are checked too, then left out); RuleError on the first bad one."""
    kept: list[Rule] = []
    preds: list[Predicate] = []
    seen: set[str] = set()
    for item in rules:
        rule = item if isinstance(item, Rule) else Rule.from_dict(item)
        if rule.id in seen:
            raise RuleError(rule.id, "the id is used by another rule of the bundle")
        seen.add(rule.id)
        pred = compile_condition(rule.when, rule.id)
        if rule.enabled:
            kept.append(rule)
            preds.append(pred)
    return CompiledRules(tuple(kept), tuple(preds))


def compile_condition(cond: object, rule_id: str, depth: int = 0) -> Predicate:
    """A predicate over the view for one condition (recursively); RuleError names the rule."""
    if depth > MAX_DEPTH:
        raise RuleError(rule_id, f"conditions are nested deeper than {MAX_DEPTH}")
    if not isinstance(cond, Mapping) or len(cond) == 0:
        raise RuleError(rule_id, f"a condition must be a non-empty object, got {cond!r:.80}")
    if "fact" in cond:
        return _compile_fact(cond, rule_id)
    if len(cond) != 1:
        raise RuleError(rule_id, f"a condition has exactly one of all, any, not, listed, fact; got {sorted(cond)}")
    (key, arg), = cond.items()
    if key in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise RuleError(rule_id, f"{key!r} needs a non-empty list of conditions, got {arg!r:.80}")
        parts = tuple(compile_condition(c, rule_id, depth + 1) for c in arg)
        return _all(parts) if key == "all" else _any(parts)
    if key == "not":
        inner = compile_condition(arg, rule_id, depth + 1)
        return lambda view: not inner(view)
    if key == "listed":
        if arg != "any" and arg not in LIST_KINDS:
            raise RuleError(rule_id, f"'listed' names a list kind ({', '.join(LIST_KINDS)}) or 'any', got {arg!r}")
        return (lambda view: bool(view["listed"])) if arg == "any" else (lambda view: arg in view["listed"])
    raise RuleError(rule_id, f"unknown condition {key!r} (expected all, any, not, listed or fact)")


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    return lambda view: all(p(view) for p in parts)


def _any(parts: tuple[Predicate, ...]) -> Predicate:
    return lambda view: any(p(view) for p in parts)


def _compile_fact(cond: Mapping[str, Any], rule_id: str) -> Predicate:
    """A comparison of one fact: checked against the fact's type, values normalised like the fact."""
    name, op = cond.get("fact"), cond.get("op")
    extra = sorted(set(cond) - {"fact", "op", "value"})
    if extra:
        raise RuleError(rule_id, f"a fact condition has only fact, op and value; got also {', '.join(map(str, extra))}")
    if not isinstance(name, str) or name not in FACTS:
        raise RuleError(rule_id, f"unknown fact {name!r}")
    if op not in OPS:
        raise RuleError(rule_id, f"unknown op {op!r} for fact {name!r} (expected one of {', '.join(OPS)})")
    if op != "present" and "value" not in cond:
        raise RuleError(rule_id, f"op {op!r} on fact {name!r} needs a value")
    value = _checked_value(FACTS[name], op, cond.get("value", True), name, rule_id)
    if name in NORMALISED:
        value = _normalised(value, name)
    test = _TESTS[op](value)
    if op == "present":
        return lambda view: (view.get(name) not in (None, ())) is value
    if FACTS[name] == "list" and op == "ne":
        return lambda view: bool(xs := view.get(name)) and value not in (xs or ())
    if FACTS[name] == "list":
        return lambda view: any(test(x) for x in view.get(name) or ())
    return lambda view: (x := view.get(name)) is not None and test(x)


def _checked_value(ftype: FactType, op: str, value: object, name: str, rule_id: str) -> Any:
    """The rule's value when it suits the op and the fact's type; else RuleError."""
    def bad(need: str) -> RuleError:
        return RuleError(rule_id, f"op {op!r} on fact {name!r} needs {need}, got {value!r:.80}")
    scalar = float if ftype == "num" else bool if ftype == "bool" else str
    if op == "present":
        if not isinstance(value, bool):
            raise bad("a value true or false (or none)")
        return value
    if op in ("gte", "lte", "between") and ftype != "num":
        raise RuleError(rule_id, f"op {op!r} compares numbers, but fact {name!r} is not a number")
    if op == "prefix" and ftype not in ("str", "list"):
        raise RuleError(rule_id, f"op 'prefix' compares text, but fact {name!r} is not text")
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_is_num(v) for v in value) and value[0] <= value[1]):
            raise bad("a list [low, high] of two numbers with low <= high")
        return (float(value[0]), float(value[1]))
    if op == "in":
        if not isinstance(value, list) or not value or not all(_fits(v, scalar) for v in value):
            raise bad(f"a non-empty list of {scalar.__name__} values")
        return tuple(value)
    if not _fits(value, float if op in ("gte", "lte") else str if op == "prefix" else scalar):
        raise bad(f"a {scalar.__name__} value" if op not in ("gte", "lte") else "a number")
    return value


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _fits(v: object, scalar: type) -> bool:
    return _is_num(v) if scalar is float else isinstance(v, scalar)


def _normalised(value: Any, name: str) -> Any:
    if isinstance(value, tuple):
        return tuple(_normalised(v, name) for v in value)
    return normalise("route" if name == "route" else name.rsplit(".", 1)[-1], value) if isinstance(value, str) else value


def _eq(v: Any) -> Callable[[Any], bool]:
    return lambda x: x == v


def _ne(v: Any) -> Callable[[Any], bool]:
    return lambda x: x != v


def _in(v: Sequence[Any]) -> Callable[[Any], bool]:
    members = frozenset(v)
    return lambda x: x in members


def _prefix(v: str) -> Callable[[Any], bool]:
    return lambda x: isinstance(x, str) and x.startswith(v)


def _gte(v: float) -> Callable[[Any], bool]:
    return lambda x: x >= v


def _lte(v: float) -> Callable[[Any], bool]:
    return lambda x: x <= v


def _between(v: tuple[float, float]) -> Callable[[Any], bool]:
    lo, hi = v
    return lambda x: lo <= x <= hi


_TESTS: dict[str, Callable[[Any], Callable[[Any], bool]]] = {
    "eq": _eq, "ne": _ne, "in": _in, "prefix": _prefix, "gte": _gte, "lte": _lte, "between": _between,
    "present": lambda v: lambda x: True,
}
