"""Control-room routes of risk assessment (issue 18): watchlists, rules, drafts and their approval,
declarations import, bundles and the stations' versions, feedback KPIs.

Four eyes: supervisors and admins draft (`risk_draft`), only admins approve, reject and publish,
and never a change they drafted themselves (riskhub/authoring.py refuses it whatever the role).
Entries above a role's need-to-know level (authoring.CLEARANCE) are not shown to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from appliance.validation import QueryTime
from central_sync.control_room import audit, auth
from central_sync.control_room.refusals import Refused
from central_sync.errors import DraftError, FourEyesError, PublishError
from central_sync.riskhub import acks, authoring, declarations, feedback
from central_sync.riskhub import publish as pub
from risk.errors import RuleError
from risk.rules import compile_rules

if TYPE_CHECKING:
    from central_sync.control_room.service import ControlRoom

MAX_UPLOAD = 20 * 1024 * 1024


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftIn(_Body):
    op: authoring.Op
    payload: dict
    note: str = Field("", max_length=1000)


class RejectIn(_Body):
    reason: str = Field(min_length=1, max_length=1000)


class RuleCheck(_Body):
    rule: dict


def build_risk_router(room: ControlRoom, need: Callable[[str], Callable[..., auth.User]]) -> APIRouter:
    store = room.store
    r = APIRouter(prefix="/cr/api/risk")

    @r.get("/watchlists")
    def watchlists(user: auth.User = Depends(need("risk_view"))) -> list[dict]:
        return authoring.watchlists(store)

    @r.get("/entries")
    def entries(list_id: str | None = None, after_list: str = "", after: str = "",
                limit: int = Query(500, ge=1, le=5000), user: auth.User = Depends(need("risk_view"))) -> list[dict]:
        return authoring.entries(store, list_id, authoring.CLEARANCE.get(user.role, 0), limit, (after_list, after))

    @r.get("/rules")
    def rules(user: auth.User = Depends(need("risk_view"))) -> dict:
        return {"rules": authoring.rules(store), "random": authoring.random_policy(store)}

    @r.post("/rules/check")
    def check_rule(body: RuleCheck, user: auth.User = Depends(need("risk_view"))) -> dict:
        """Whether the rule compiles; if not, its English sentence (`error`), code (`error.<code>` in the
        catalogue, rule.<RuleError code>) and values, as a refusal carries them."""
        try:
            compile_rules([body.rule])
        except RuleError as exc:
            return {"ok": False, "error": str(exc), "code": f"rule.{exc.code}", "vals": exc.vals}
        return {"ok": True, "error": None, "code": None, "vals": {}}

    @r.get("/drafts")
    def draft_list(status: Literal["pending", "approved", "rejected", "all"] = "pending",
                   user: auth.User = Depends(need("risk_view"))) -> list[dict]:
        return [d.view() for d in authoring.drafts(store, None if status == "all" else status)]

    @r.post("/drafts")
    def draft(body: DraftIn, user: auth.User = Depends(need("risk_draft"))) -> dict:
        try:
            return authoring.propose(store, user.username, body.op, body.payload, body.note).view()
        except DraftError as exc:
            raise draft_refused(422, exc) from exc

    @r.post("/drafts/{draft_id}/approve")
    def approve(draft_id: str, user: auth.User = Depends(need("risk_approve"))) -> dict:
        return _decided(lambda: authoring.approve(store, draft_id, user.username), user)

    @r.post("/drafts/{draft_id}/reject")
    def reject(draft_id: str, body: RejectIn, user: auth.User = Depends(need("risk_approve"))) -> dict:
        return _decided(lambda: authoring.reject(store, draft_id, user.username, body.reason), user)

    def _decided(fn: Callable[[], dict], user: auth.User) -> dict:
        try:
            return fn()
        except FourEyesError as exc:
            audit.append(store, user.username, "risk.four_eyes_refused", "draft", {"why": str(exc)})
            raise draft_refused(403, exc) from exc
        except DraftError as exc:
            raise draft_refused(409, exc) from exc

    @r.get("/changes")
    def changes(limit: int = Query(200, ge=1, le=2000), user: auth.User = Depends(need("risk_view"))) -> list[dict]:
        """Decided drafts with who drafted, who decided, when, and the before/after of approved ones."""
        rows = store.query("SELECT d.id, d.op, d.target, d.author, d.created_at, a.approver, a.decision, a.reason,"
                           " a.before, a.after, a.at FROM risk_approvals a JOIN risk_drafts d ON d.id = a.draft_id"
                           " ORDER BY a.at DESC LIMIT ?", (limit,))
        keys = ("id", "op", "target", "author", "created_at", "approver", "decision", "reason", "before", "after", "at")
        return [dict(zip(keys, row)) for row in rows]

    @r.post("/declarations")
    async def import_declarations(request: Request, format: Literal["csv", "json"] = "csv",
                                  user: auth.User = Depends(need("risk_import"))) -> dict:
        text = await _upload_text(request)
        result = declarations.parse_csv(text) if format == "csv" else declarations.parse_json(text)
        declarations.store_declarations(store, result.good, f"upload:{user.username}")
        audit.append(store, user.username, "risk.declarations_import", format, result.view() | {"errors": result.errors[:20]})
        return result.view()

    @r.get("/declarations")
    def declaration_list(limit: int = Query(100, ge=1, le=5000), user: auth.User = Depends(need("risk_view"))) -> list[dict]:
        return declarations.recent(store, 0.0, limit)

    @r.post("/publish")
    def publish(user: auth.User = Depends(need("risk_publish"))) -> dict:
        if room.risk_key is None:
            raise Refused(503, "risk.no_key", "the hub has no risk signing key (control room risk_key); nothing published")
        try:
            return pub.publish(store, room.risk_key, user.username, room.risk_deliver,
                               expiry_s=room.cfg.risk_expiry_s).view()
        except PublishError as exc:
            raise Refused(500, "risk.publish_failed", f"{exc}; nothing published") from exc

    @r.get("/bundles")
    def bundle_list(user: auth.User = Depends(need("risk_view"))) -> dict:
        now = time.time()
        return {"bundles": pub.bundles(store), "stations": acks.station_versions(store, now), "now": now,
                "key_id": room.risk_key.key_id if room.risk_key else None}

    @r.get("/kpi")
    def kpi(since: QueryTime | None = None, until: QueryTime | None = None,
            user: auth.User = Depends(need("kpi"))) -> dict:
        end = until.timestamp() if until else time.time()
        rows = feedback.feedback_rows(store, since.timestamp() if since else end - 30 * 86400, end)
        return {"rates": feedback.hit_rates(rows), "inspections": len(rows)}

    return r


def draft_refused(status: int, exc: DraftError) -> Refused:
    """A draft, approval or rejection refused: its code (error.risk.<code>) and values, its English sentence kept."""
    return Refused(status, f"risk.{exc.code}", str(exc), **exc.vals)


async def _upload_text(request: Request) -> str:
    """The request body as UTF-8 text (a BOM from spreadsheet exports removed); 413 above MAX_UPLOAD."""
    data = await request.body()
    if len(data) > MAX_UPLOAD:
        raise Refused(413, "risk.upload_too_large", f"the upload has {len(data)} bytes, more than the {MAX_UPLOAD}"
                      " accepted; nothing was imported", size=len(data), max=MAX_UPLOAD)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refused(422, "risk.upload_not_utf8", f"the upload is not UTF-8 text: {exc}; nothing was imported",
                      at=exc.start) from exc
