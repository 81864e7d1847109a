"""The case bundle download: a supervisor exports a case's evidence, signed and audited (docs/case-bundles.md)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from central_sync.case_bundle import Bundle, zip_bytes
from edge import auth, case_export
from edge.store import Store
from edge.web.deps import WebState, require, state

log = structlog.get_logger()
router = APIRouter()
STATUS = {"reason_required": 422, "bad_identity": 422, "too_many": 422, "unknown_record": 404, "no_records": 404}


class CaseExportRequest(BaseModel):
    """Record ids, or one identity as KIND=VALUE (plate=..., container=..., rfid_tid=...), and why."""

    model_config = ConfigDict(extra="forbid")

    record_ids: list[str] = Field(default_factory=list, max_length=case_export.MAX_RECORDS)
    identity: str = Field("", max_length=200)
    reason: str = Field("", max_length=2000)


def _selection(body: CaseExportRequest) -> case_export.Selection:
    if bool(body.record_ids) == bool(body.identity):
        raise case_export.CaseExportRefused("bad_selection", "name either record ids or one identity, not both or neither")
    if body.identity:
        return case_export.parse_identity(body.identity)
    return case_export.Selection(tuple(body.record_ids))


@router.post("/api/case-bundles")
async def export_case(body: CaseExportRequest, st: WebState = Depends(state),
                      user: auth.User = Depends(require("case.export"))) -> Response:
    """The case as a signed bundle zip; refused (with a stable code) without a reason or a match."""
    def build(store: Store) -> Bundle:
        return case_export.export(store, _selection(body), user.badge, body.reason)

    try:
        bundle = await st.db(build)
    except case_export.CaseExportRefused as exc:
        log.warning("web.case_export_refused", actor=user.badge, code=exc.code, reason=str(exc))
        raise HTTPException(STATUS.get(exc.code, 422), exc.code) from exc
    return Response(zip_bytes(bundle), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="case-{bundle.manifest.case_id}.zip"',
                             "X-Manifest-Sha256": bundle.manifest_sha256})
