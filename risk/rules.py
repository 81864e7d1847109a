"""The rule language: JSON conditions over an item's facts, compiled once per bundle into generated Python code.

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

import math
from collections.abc import Callable, Iterable, Mapping
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
CHUNK = 25
"""Rules per generated function (see compile_rules)."""
SEP = "\x00"
"""Joins a list fact's elements for prefix tests; never inside a value (normalise and the engine drop it)."""

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
            raise RuleError(str(rid), "no_id", "the rule has no id (a non-empty string)")
        extra = sorted(set(doc) - RULE_KEYS)
        if extra:
            fields = ", ".join(map(str, extra))
            raise RuleError(rid, "unknown_fields", f"unknown field(s) {fields}", fields=fields)
        for key, kind, words, code in (("name", str, "text", "field_not_text"),
                                       ("reason", str, "text", "field_not_text"),
                                       ("when", Mapping, "an object", "field_not_object"),
                                       ("enabled", bool, "true or false", "field_not_bool")):
            if key in doc and not isinstance(doc[key], kind):
                got = f"{doc[key]!r:.80}"
                raise RuleError(rid, code, f"field {key!r} must be {words}, got {got}", field=key, got=got)
        score = doc.get("score", 0)
        if not isinstance(score, int) or isinstance(score, bool):
            raise RuleError(rid, "score_not_int", f"score must be an integer, got {score!r}", got=repr(score))
        lane = doc.get("lane")
        if lane not in LANES:
            raise RuleError(rid, "bad_lane", f"lane must be one of red, amber, green, got {lane!r}", got=repr(lane))
        if "when" not in doc:
            raise RuleError(rid, "no_when", "the rule has no condition ('when')")
        return cls(id=rid, name=doc.get("name", rid), reason=doc.get("reason", rid), when=doc["when"], score=score,
                   lane=lane, enabled=doc.get("enabled", True))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what bundle_dict writes)."""
        return {"id": self.id, "name": self.name, "reason": self.reason, "when": self.when, "score": self.score,
                "lane": self.lane, "enabled": self.enabled}


@dataclass(frozen=True)
class CompiledRules:
    """The enabled rules of a bundle, in bundle order, with one generated function that tests them all."""

    rules: tuple[Rule, ...] = ()
    fire: Callable[[View], list[int]] = field(default=lambda view: [], repr=False)
    source: str = field(default="", repr=False)

    def fired(self, view: View) -> list[Rule]:
        """The rules whose condition holds for the item's view."""
        return [self.rules[i] for i in self.fire(view)]


def compile_rules(rules: Iterable[Rule | Mapping[str, Any]]) -> CompiledRules:
    """Check and compile every rule (disabled ones are checked too, then left out); RuleError on the first bad one.

    The enabled rules become Python functions generated from the conditions: `fire` reads each fact the
    rules name from the view once and passes them to functions of CHUNK rules each, where every rule is
    one `if` of `and`/`or` expressions that stop at the first condition deciding it. The source holds
    only fact variables, operators and references to a table of the rules' values (`C[i]`), never a
    value itself, so no rule text can become code. Compiling in chunks keeps each `compile()` call (which
    holds the interpreter lock) short, so a station applying a bundle in a worker thread never stalls.
    """
    kept, gen, tests = _generated(rules)
    params = ", ".join(["out", "L", *gen.facts.values(), *gen.joins.values()])
    namespace: dict[str, Any] = {"SEP": SEP, "C": tuple(gen.consts)}
    sources, chunks = [], []
    for first in range(0, len(tests), CHUNK):
        sources.append("\n".join([f"def chunk({params}):", *tests[first:first + CHUNK]]))
        exec(compile(sources[-1], f"<risk rules {first}>", "exec"), namespace)  # noqa: S102 - checked rules only
        chunks.append(namespace.pop("chunk"))
    sources.insert(0, "\n".join([
        "def fire(v):", "    L = v['listed']",
        *(f"    {var} = v.get({name!r}){' or ()' if FACTS[name] == 'list' else ''}" for name, var in gen.facts.items()),
        *(f"    {var} = ''.join([SEP + x for x in {gen.facts[name]}])" for name, var in gen.joins.items()),
        "    out = []", f"    for chunk in CHUNKS: chunk({params})", "    return out"]))
    namespace["CHUNKS"] = tuple(chunks)
    exec(compile(sources[0], "<risk rules>", "exec"), namespace)  # noqa: S102 - checked rules only
    return CompiledRules(tuple(kept), namespace["fire"], "\n\n".join(sources))


def check_rules(rules: Iterable[Rule | Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Check every rule without compiling any code (what opening a bundle does); RuleError on the first bad one."""
    return tuple(_generated(rules)[0])


def _generated(rules: Iterable[Rule | Mapping[str, Any]]) -> tuple[list[Rule], _Gen, list[str]]:
    """The enabled rules, the facts and values they use, and each one's `if` line."""
    kept: list[Rule] = []
    gen = _Gen()
    tests: list[str] = []
    seen: set[str] = set()
    for item in rules:
        rule = item if isinstance(item, Rule) else Rule.from_dict(item)
        if rule.id in seen:
            raise RuleError(rule.id, "duplicate_id", "the id is used by another rule of the bundle")
        seen.add(rule.id)
        expr = compile_condition(rule.when, rule.id, gen)
        if rule.enabled:
            tests.append(f"    if {expr}: out.append({len(kept)})")
            kept.append(rule)
    return kept, gen, tests


@dataclass
class _Gen:
    """The facts the rules read (name -> local variable) and the table of their values."""

    facts: dict[str, str] = field(default_factory=dict)
    consts: list[Any] = field(default_factory=list)
    joins: dict[str, str] = field(default_factory=dict)

    def fact(self, name: str) -> str:
        return self.facts.setdefault(name, f"f{len(self.facts)}")

    def joined(self, name: str) -> str:
        """A variable holding the list fact's elements each behind SEP: a prefix test is one substring search."""
        return self.joins.setdefault(name, f"j{len(self.joins)}")

    def const(self, value: Any) -> str:
        self.consts.append(value)
        return f"C[{len(self.consts) - 1}]"


def compile_condition(cond: object, rule_id: str, gen: _Gen, depth: int = 0) -> str:
    """The Python expression of one condition (recursively); RuleError names the rule."""
    if depth > MAX_DEPTH:
        raise RuleError(rule_id, "too_deep", f"conditions are nested deeper than {MAX_DEPTH}", max=MAX_DEPTH)
    if not isinstance(cond, Mapping) or len(cond) == 0:
        got = f"{cond!r:.80}"
        raise RuleError(rule_id, "not_a_condition", f"a condition must be a non-empty object, got {got}", got=got)
    if "fact" in cond:
        return _compile_fact(cond, rule_id, gen)
    if len(cond) != 1:
        raise RuleError(rule_id, "condition_keys", f"a condition has exactly one of all, any, not, listed, fact; "
                                                   f"got {sorted(cond)}", got=sorted(cond))
    (key, arg), = cond.items()
    if key in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            got = f"{arg!r:.80}"
            raise RuleError(rule_id, "empty_group", f"{key!r} needs a non-empty list of conditions, got {got}",
                            key=key, got=got)
        parts = [compile_condition(c, rule_id, gen, depth + 1) for c in arg]
        return "(" + (" and " if key == "all" else " or ").join(parts) + ")"
    if key == "not":
        return f"(not {compile_condition(arg, rule_id, gen, depth + 1)})"
    if key == "listed":
        if arg != "any" and arg not in LIST_KINDS:
            kinds = ", ".join(LIST_KINDS)
            raise RuleError(rule_id, "bad_list_kind", f"'listed' names a list kind ({kinds}) or 'any', got {arg!r}",
                            kinds=kinds, got=repr(arg))
        return "bool(L)" if arg == "any" else f"({gen.const(arg)} in L)"
    raise RuleError(rule_id, "unknown_condition", f"unknown condition {key!r} (expected all, any, not, listed or "
                                                  "fact)", key=key)


def _compile_fact(cond: Mapping[str, Any], rule_id: str, gen: _Gen) -> str:
    """A comparison of one fact: checked against the fact's type, values normalised like the fact."""
    name, op = cond.get("fact"), cond.get("op")
    extra = sorted(set(cond) - {"fact", "op", "value"})
    if extra:
        fields = ", ".join(map(str, extra))
        raise RuleError(rule_id, "fact_fields", f"a fact condition has only fact, op and value; got also {fields}",
                        fields=fields)
    if not isinstance(name, str) or name not in FACTS:
        raise RuleError(rule_id, "unknown_fact", f"unknown fact {name!r}", fact=repr(name))
    if op not in OPS:
        ops = ", ".join(OPS)
        raise RuleError(rule_id, "unknown_op", f"unknown op {op!r} for fact {name!r} (expected one of {ops})",
                        op=repr(op), fact=name, ops=ops)
    if op != "present" and "value" not in cond:
        raise RuleError(rule_id, "no_value", f"op {op!r} on fact {name!r} needs a value", op=op, fact=name)
    value = _checked_value(FACTS[name], op, cond.get("value", True), name, rule_id)
    if name in NORMALISED:
        value = _normalised(value, name)
    f = gen.fact(name)
    if op == "present":
        known = f"bool({f})" if FACTS[name] == "list" else f"({f} is not None)"
        return known if value else f"(not {known})"
    if op == "in":
        value = frozenset(value)
    if op == "between":
        lo, hi = gen.const(value[0]), gen.const(value[1])
        return f"({f} is not None and {lo} <= {f} <= {hi})"
    c = gen.const(SEP + value if op == "prefix" and FACTS[name] == "list" else value)
    if FACTS[name] == "list":
        return {"eq": f"({c} in {f})", "ne": f"(bool({f}) and {c} not in {f})", "in": f"(not {c}.isdisjoint({f}))",
                "prefix": f"({c} in {gen.joined(name)})"}[op]
    return {"eq": f"({f} is not None and {f} == {c})", "ne": f"({f} is not None and {f} != {c})",
            "in": f"({f} in {c})", "prefix": f"({f} is not None and {f}.startswith({c}))",
            "gte": f"({f} is not None and {f} >= {c})", "lte": f"({f} is not None and {f} <= {c})"}[op]


def _checked_value(ftype: FactType, op: str, value: object, name: str, rule_id: str) -> Any:
    """The rule's value when it suits the op and the fact's type; else RuleError."""
    def bad(code: str, need: str) -> RuleError:
        got = f"{value!r:.80}"
        return RuleError(rule_id, code, f"op {op!r} on fact {name!r} needs {need}, got {got}", op=op, fact=name,
                         got=got)
    scalar = float if ftype == "num" else bool if ftype == "bool" else str
    if op == "present":
        if not isinstance(value, bool):
            raise bad("present_value", "a value true or false (or none)")
        return value
    if op in ("gte", "lte", "between") and ftype != "num":
        raise RuleError(rule_id, "not_numeric_fact", f"op {op!r} compares numbers, but fact {name!r} is not a number",
                        op=op, fact=name)
    if op == "prefix" and ftype not in ("str", "list"):
        raise RuleError(rule_id, "not_text_fact", f"op 'prefix' compares text, but fact {name!r} is not text",
                        op=op, fact=name)
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_is_num(v) for v in value)
                and value[0] <= value[1]):
            raise bad("between_value", f"a list [low, high] of two numbers with low <= high ({FINITE})")
        return (float(value[0]), float(value[1]))
    if op == "in":
        if not isinstance(value, list) or not value or not all(_fits(v, scalar) for v in value):
            raise bad(IN_CODES[scalar], f"a non-empty list of {scalar.__name__} values")
        return tuple(value)
    if not _fits(value, float if op in ("gte", "lte") else str if op == "prefix" else scalar):
        raise bad(VALUE_CODES[scalar], f"a {scalar.__name__} value") if op not in ("gte", "lte") \
            else bad("value_not_number", f"a number ({FINITE})")
    return value


FINITE = "finite, within a float's range"
IN_CODES = {str: "in_not_texts", float: "in_not_numbers", bool: "in_not_bools"}
VALUE_CODES = {str: "value_not_text", float: "value_not_number", bool: "value_not_bool"}


def _is_num(v: object) -> bool:
    """A number a rule may hold: not a bool, finite, and one a float holds (10**400 is none: OverflowError)."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _fits(v: object, scalar: type) -> bool:
    return _is_num(v) if scalar is float else isinstance(v, scalar)


def _normalised(value: Any, name: str) -> Any:
    if isinstance(value, tuple):
        return tuple(_normalised(v, name) for v in value)
    if not isinstance(value, str):
        return value
    return normalise("route" if name == "route" else name.rsplit(".", 1)[-1], value)
