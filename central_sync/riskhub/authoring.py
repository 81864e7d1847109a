"""Four eyes: a change to watchlists, rules or the random policy is drafted by one user and takes
effect only when a different user approves it (or is rejected with a reason).

A draft names one operation (OPS) and its payload, checked when it is drafted (a rule is compiled
by risk.rules); the approval applies it to the approved state in the same transaction that records
the approval with the row's before/after, then appends the change to the hash-chained audit log.
The approved state is what `publish` turns into a bundle.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central_sync.control_room import audit
from central_sync.control_room.db import execute
from central_sync.errors import DraftError, FourEyesError
from central_sync.hub.store import Cursor, HubStore
from models.ocr import iso6346
from risk.bundle import normalise
from appliance.validation import first_non_finite
from risk.errors import RuleError
from risk.rules import Rule, compile_rules

LIST_KINDS = ("plate", "container", "rfid_tid", "seal", "trader", "route")
LANES = ("red", "amber", "green")
ID = r"^[A-Za-z0-9_.:-]{1,64}$"
OWNER_SERIAL = re.compile(r"[A-Z]{3}[UJZ][0-9]{6}")
"""A container code without its check digit (the form a drafted entry may take; the digit is added)."""
# How far a role may see into need-to-know levels (0 = everyone with risk rights, 3 = admins only).
CLEARANCE = {"operator": 0, "supervisor": 2, "admin": 3}


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class WatchlistIn(_Payload):
    id: str = Field(pattern=ID)
    kind: Literal["plate", "container", "rfid_tid", "seal", "trader", "route"]
    name: str = Field(min_length=1, max_length=200)
    lane: Literal["red", "amber", "green"] = "red"
    owner: str = Field(min_length=1, max_length=64)


class EntryIn(_Payload):
    list_id: str = Field(pattern=ID)
    value: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=64)
    valid_from: float | None = None
    valid_to: float | None = None
    level: int = Field(0, ge=0, le=3)


class EntryKey(_Payload):
    list_id: str = Field(pattern=ID)
    value: str = Field(min_length=1, max_length=128)


class Ref(_Payload):
    id: str = Field(pattern=ID)


class RandomIn(_Payload):
    rate: float = Field(ge=0, le=1)
    stale_rate: float = Field(ge=0, le=1)
    per_lane: dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict, max_length=64)


Op = Literal["watchlist.put", "watchlist.delete", "entry.put", "entry.delete", "rule.put", "rule.delete", "random.set"]
OPS: dict[str, type[_Payload] | None] = {
    "watchlist.put": WatchlistIn, "watchlist.delete": Ref, "entry.put": EntryIn, "entry.delete": EntryKey,
    "rule.put": None, "rule.delete": Ref, "random.set": RandomIn}  # a rule is checked by risk.rules
DEFAULT_RANDOM = {"rate": 0.02, "stale_rate": 0.10, "per_lane": {}}


@dataclass(frozen=True, slots=True)
class Draft:
    id: str
    author: str
    created_at: float
    op: str
    target: str
    payload: dict
    note: str
    status: str

    def view(self) -> dict:
        return {"id": self.id, "author": self.author, "created_at": self.created_at, "op": self.op,
                "target": self.target, "payload": self.payload, "note": self.note, "status": self.status}


DRAFT_COLS = "id, author, created_at, op, target, payload, note, status"


def _draft(row: tuple) -> Draft:
    return Draft(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7])


# ---- drafting ---------------------------------------------------------------------------------
def check_payload(store: HubStore, op: str, payload: dict) -> tuple[str, dict]:
    """(target, the payload as it will be applied) or DraftError in one sentence."""
    if op not in OPS:
        raise DraftError(f"operation {op!r} is not one of {', '.join(OPS)}", "unknown_op", op=op, ops=", ".join(OPS))
    if (where := first_non_finite(payload)) is not None:  # JSON 1e999 is infinity: shown as null, stored as inf
        raise DraftError(f"{op} draft refused: {where} is not a finite number", "not_finite", field=where)
    if op == "rule.put":
        return _check_rule(payload)
    model = OPS[op]
    assert model is not None
    try:
        checked = model.model_validate(payload).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise DraftError(f"{op} draft refused: {where} {first['msg'].lower()} (got {first.get('input')!r})",
                         "bad_value", field=where, value=_shown(first.get("input"))) from exc
    if op in ("entry.put", "entry.delete"):
        kind = _list_kind(store, checked["list_id"])
        checked["value"] = _entry_value(store, op, kind, checked["list_id"], checked["value"])
        if op == "entry.put" and checked["valid_to"] is not None and checked["valid_from"] is not None \
                and checked["valid_to"] <= checked["valid_from"]:
            raise DraftError(f"entry {checked['value']} of list {checked['list_id']}: valid_to {checked['valid_to']}"
                             f" is not after valid_from {checked['valid_from']}", "valid_order", value=checked["value"],
                             list=checked["list_id"])
        return f"entry:{checked['list_id']}:{checked['value']}", checked
    if op == "random.set":
        return "random", checked
    return f"{op.split('.')[0]}:{checked['id']}", checked


def _entry_value(store: HubStore, op: str, kind: str, list_id: str, value: str) -> str:
    """The value as stored and published (normalised); DraftError for a new entry that normalises to nothing.

    A deletion naming a value exactly as stored deletes that row, even one stored under an older form."""
    if op == "entry.delete" and store.query("SELECT 1 FROM risk_entries WHERE list_id=? AND value=?", (list_id, value)):
        return value
    norm = normalise(kind, value)
    if op == "entry.put" and not norm:
        raise DraftError(f"entry.put draft refused: value {value!r} of list {list_id} is empty once normalised "
                         "(the separators stations ignore dropped), so it could never match", "entry_empty",
                         value=value, list=list_id)
    if kind == "container":
        return _container_code(op, list_id, value, norm)
    if kind == "plate" and op == "entry.put" and (marks := _not_on_plates(norm)):
        raise DraftError(f"entry.put draft refused: plate {value!r} of list {list_id} holds {marks}, which no plate "
                         "read carries (stations read a plate's letters and digits only), so it could never match",
                         "plate_marks", value=value, list=list_id, marks=marks)
    return norm


def _not_on_plates(norm: str) -> str:
    """The characters of a normalised plate that are neither letters nor digits ('•', ',', '(') quoted, or ''."""
    return ", ".join(repr(c) for c in dict.fromkeys(norm) if unicodedata.category(c)[0] not in "LN")


def _container_code(op: str, list_id: str, value: str, norm: str) -> str:
    """A container code with its ISO 6346 check digit (added to an owner code and serial of 10 characters, as
    stations read whole codes); DraftError for a new entry that no station could read (bad digit, no code)."""
    if OWNER_SERIAL.fullmatch(norm):
        return norm + str(iso6346.check_digit(norm))
    if op == "entry.delete" or iso6346.is_valid(norm):
        return norm
    if iso6346.CODE.fullmatch(norm):
        raise DraftError(f"entry.put draft refused: container {value!r} of list {list_id} fails its ISO 6346 check "
                         f"digit (it should be {iso6346.check_digit(norm[:10])}); stations only read codes that pass it",
                         "container_check", value=value, list=list_id, digit=iso6346.check_digit(norm[:10]))
    raise DraftError(f"entry.put draft refused: container {value!r} of list {list_id} is not an ISO 6346 code "
                     "(3 letters, U, J or Z, 6 digits and the check digit, or without the check digit)",
                     "container_format", value=value, list=list_id)


def _shown(value: object) -> str:
    """A refused value as a sentence shows it: a number or a short text, else "-"."""
    ok = isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 64)
    return str(value) if ok else "-"


def _check_rule(payload: dict) -> tuple[str, dict]:
    rule_id = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(rule_id, str) or not rule_id:
        raise DraftError(f"rule draft refused: the rule has no id (got {payload!r:.120})", "rule_no_id")
    try:
        compile_rules([payload])
        rule = Rule.from_dict(payload).to_dict()  # defaults filled in: stored and shown as the stations get it
    except RuleError as exc:
        raise DraftError(f"rule {rule_id} draft refused: {exc}", "rule_invalid", rule=rule_id) from exc
    return f"rule:{rule_id}", rule


def _list_kind(store: HubStore, list_id: str) -> str:
    rows = store.query("SELECT kind FROM risk_watchlists WHERE id=?", (list_id,))
    if not rows:
        raise DraftError(f"watchlist {list_id!r} does not exist; draft the list first and have it approved",
                         "no_watchlist", list=list_id)
    return str(rows[0][0])


def propose(store: HubStore, author: str, op: str, payload: dict, note: str = "") -> Draft:
    """Record a pending change (nothing takes effect until another user approves it)."""
    target, checked = check_payload(store, op, payload)
    draft = Draft(uuid.uuid4().hex[:16], author, time.time(), op, target, checked, note[:1000], "pending")
    execute(store, f"INSERT INTO risk_drafts ({DRAFT_COLS}) VALUES (?,?,?,?,?,?,?,?)",
                (draft.id, author, draft.created_at, op, target, json.dumps(checked, sort_keys=True), draft.note, "pending"))
    audit.append(store, author, "risk.draft", f"draft:{draft.id}", {"op": op, "target": target, "payload": checked})
    return draft


def drafts(store: HubStore, status: str | None = "pending", limit: int = 200) -> list[Draft]:
    where, args = ("WHERE status=?", (status,)) if status else ("", ())
    rows = store.query(f"SELECT {DRAFT_COLS} FROM risk_drafts {where} ORDER BY created_at DESC LIMIT ?", (*args, limit))
    return [_draft(r) for r in rows]


# ---- deciding ---------------------------------------------------------------------------------
def approve(store: HubStore, draft_id: str, approver: str) -> dict:
    """Apply a pending draft of another user; {"draft", "before", "after"}. FourEyesError for its author."""
    def run(cur: Cursor) -> dict:
        draft = _pending(cur, store, draft_id, approver, "approve")
        before = _current(cur, store, draft.target)
        _apply(cur, store, draft)
        after = _current(cur, store, draft.target)
        _decide(cur, store, draft, approver, "approved", "", before, after)
        return {"draft": draft.view() | {"status": "approved"}, "before": before, "after": after}
    done = store.run_in_transaction(run)
    audit.append(store, approver, "risk.approve", f"draft:{draft_id}",
                 {"target": done["draft"]["target"], "author": done["draft"]["author"],
                  "before": done["before"], "after": done["after"]})
    return done


def reject(store: HubStore, draft_id: str, approver: str, reason: str) -> dict:
    """Close a pending draft without applying it; the reason is required and kept."""
    if not reason.strip():
        raise DraftError(f"draft {draft_id} not rejected: a rejection needs a reason", "reject_reason", draft=draft_id)

    def run(cur: Cursor) -> dict:
        draft = _pending(cur, store, draft_id, approver, "reject")
        _decide(cur, store, draft, approver, "rejected", reason, None, None)
        return draft.view() | {"status": "rejected", "reason": reason}
    done = store.run_in_transaction(run)
    audit.append(store, approver, "risk.reject", f"draft:{draft_id}", {"target": done["target"], "reason": reason})
    return done


def _pending(cur: Cursor, store: HubStore, draft_id: str, user: str, verb: str) -> Draft:
    rows = cur.execute(store.sql(f"SELECT {DRAFT_COLS} FROM risk_drafts WHERE id=?"), (draft_id,)).fetchall()
    if not rows:
        raise DraftError(f"draft {draft_id!r} does not exist", "unknown_draft", draft=draft_id)
    draft = _draft(rows[0])
    if draft.status != "pending":
        raise DraftError(f"draft {draft_id} is already {draft.status}", "already_decided", draft=draft_id,
                         decision=draft.status)
    if draft.author == user:
        raise FourEyesError(f"{user} drafted {draft_id} ({draft.op} {draft.target}) and may not {verb} it;"
                            " another user must", "four_eyes", user=user, draft=draft_id, target=draft.target)
    return draft


def _decide(cur: Cursor, store: HubStore, draft: Draft, user: str, decision: str, reason: str,
            before: dict | None, after: dict | None) -> None:
    """Close the draft (only while still pending: two approvers at once, one wins) and record the decision."""
    got = cur.execute(store.sql("UPDATE risk_drafts SET status=? WHERE id=? AND status='pending' RETURNING id"),
                      (decision, draft.id)).fetchall()
    if not got:
        raise DraftError(f"draft {draft.id} was decided by someone else meanwhile", "decided_meanwhile", draft=draft.id)
    cur.execute(store.sql("INSERT INTO risk_approvals (draft_id, approver, decision, reason, before, after, at)"
                          " VALUES (?,?,?,?,?,?,?)"),
                (draft.id, user, decision, reason, _json(before), _json(after), time.time()))


def _json(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


# ---- the approved state -------------------------------------------------------------------------
def _apply(cur: Cursor, store: HubStore, draft: Draft) -> None:
    p, now = draft.payload, time.time()
    run = lambda sql, args: cur.execute(store.sql(sql), args)  # noqa: E731
    match draft.op:
        case "watchlist.put":
            run("INSERT INTO risk_watchlists (id, kind, name, lane, owner, updated_at) VALUES (?,?,?,?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET name=excluded.name, lane=excluded.lane, owner=excluded.owner,"
                " updated_at=excluded.updated_at", (p["id"], p["kind"], p["name"], p["lane"], p["owner"], now))
            kind = cur.execute(store.sql("SELECT kind FROM risk_watchlists WHERE id=?"), (p["id"],)).fetchall()[0][0]
            if kind != p["kind"]:
                raise DraftError(f"watchlist {p['id']} holds {kind} values; its kind cannot become {p['kind']}",
                                 "list_kind", list=p["id"], kind=kind, new=p["kind"])
        case "watchlist.delete":
            run("DELETE FROM risk_entries WHERE list_id=?", (p["id"],))
            run("DELETE FROM risk_watchlists WHERE id=?", (p["id"],))
        case "entry.put":
            if not cur.execute(store.sql("SELECT 1 FROM risk_watchlists WHERE id=?"), (p["list_id"],)).fetchall():
                raise DraftError(f"watchlist {p['list_id']!r} no longer exists; entry {p['value']} not added",
                                 "list_gone", list=p["list_id"], value=p["value"])
            run("INSERT INTO risk_entries (list_id, value, reason, owner, valid_from, valid_to, level, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (list_id, value) DO UPDATE SET reason=excluded.reason,"
                " owner=excluded.owner, valid_from=excluded.valid_from, valid_to=excluded.valid_to,"
                " level=excluded.level, updated_at=excluded.updated_at",
                (p["list_id"], p["value"], p["reason"], p["owner"], p["valid_from"], p["valid_to"], p["level"], now))
        case "entry.delete":
            run("DELETE FROM risk_entries WHERE list_id=? AND value=?", (p["list_id"], p["value"]))
        case "rule.put":
            run("INSERT INTO risk_rules (id, body, updated_at) VALUES (?,?,?) ON CONFLICT (id) DO UPDATE"
                " SET body=excluded.body, updated_at=excluded.updated_at", (p["id"], json.dumps(p, sort_keys=True), now))
        case "rule.delete":
            run("DELETE FROM risk_rules WHERE id=?", (p["id"],))
        case "random.set":
            run("INSERT INTO risk_settings (key, value, updated_at) VALUES ('random',?,?) ON CONFLICT (key)"
                " DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at", (json.dumps(p, sort_keys=True), now))


def _current(cur: Cursor, store: HubStore, target: str) -> dict | None:
    """The approved row a draft's target names, as a dict (None when absent): the audit's before/after."""
    kind, _, key = target.partition(":")
    one = lambda sql, args: cur.execute(store.sql(sql), args).fetchall()  # noqa: E731
    if kind == "watchlist":
        rows = one("SELECT id, kind, name, lane, owner FROM risk_watchlists WHERE id=?", (key,))
        return dict(zip(("id", "kind", "name", "lane", "owner"), rows[0])) if rows else None
    if kind == "entry":
        list_id, _, value = key.partition(":")
        rows = one(f"SELECT {ENTRY_COLS} FROM risk_entries WHERE list_id=? AND value=?", (list_id, value))
        return dict(zip(ENTRY_KEYS, rows[0])) if rows else None
    if kind == "rule":
        rows = one("SELECT body FROM risk_rules WHERE id=?", (key,))
        return json.loads(rows[0][0]) if rows else None
    rows = one("SELECT value FROM risk_settings WHERE key='random'", ())
    return json.loads(rows[0][0]) if rows else None


ENTRY_KEYS = ("list_id", "value", "reason", "owner", "valid_from", "valid_to", "level")
ENTRY_COLS = ", ".join(ENTRY_KEYS)


def watchlists(store: HubStore) -> list[dict]:
    rows = store.query("SELECT w.id, w.kind, w.name, w.lane, w.owner, (SELECT count(*) FROM risk_entries e"
                       " WHERE e.list_id = w.id) FROM risk_watchlists w ORDER BY w.id")
    return [dict(zip(("id", "kind", "name", "lane", "owner", "entries"), r)) for r in rows]


def entries(store: HubStore, list_id: str | None = None, max_level: int = 3, limit: int = 1000,
            after: tuple[str, str] = ("", "")) -> list[dict]:
    """Entries up to a need-to-know level, in (list, value) order, a page at a time: the next page starts
    after the last (list id, value) of the previous one."""
    where, args = ("AND list_id=?", (list_id,)) if list_id else ("", ())
    rows = store.query(f"SELECT {ENTRY_COLS} FROM risk_entries WHERE level<=? AND (list_id>? OR (list_id=? AND value>?))"
                       f" {where} ORDER BY list_id, value LIMIT ?", (max_level, after[0], after[0], after[1], *args, limit))
    return [dict(zip(ENTRY_KEYS, r)) for r in rows]


def rules(store: HubStore) -> list[dict[str, Any]]:
    return [json.loads(r[0]) for r in store.query("SELECT body FROM risk_rules ORDER BY id")]


def random_policy(store: HubStore) -> dict:
    rows = store.query("SELECT value FROM risk_settings WHERE key='random'")
    return json.loads(rows[0][0]) if rows else dict(DEFAULT_RANDOM)
