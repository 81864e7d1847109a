"""The control room's case export: a supervisor downloads a case as a bundle signed by the hub's command key
(docs/case-bundles.md); refused without a reason, without a key, or when nothing matches; audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from central_sync import case_bundle
from central_sync.control_room import auth
from central_sync.control_room.refusals import Refused
from central_sync.hub import case_export

if TYPE_CHECKING:
    from central_sync.control_room.service import ControlRoom


class CaseExportIn(BaseModel):
    """Record ids, or one identity (`kind` and `value`), and why the evidence leaves the hub."""

    model_config = ConfigDict(extra="forbid")
    record_ids: list[str] = Field(default_factory=list, max_length=case_export.MAX_RECORDS)
    kind: str = Field("", max_length=20)
    value: str = Field("", max_length=200)
    reason: str = Field("", max_length=2000)


def build_case_router(room: ControlRoom, need: Callable[[str], Callable[..., auth.User]]) -> APIRouter:
    r = APIRouter(prefix="/cr/api")

    @r.post("/case-bundles")
    def export(body: CaseExportIn, user: auth.User = Depends(need("case_export"))) -> Response:
        if not body.reason.strip():
            raise Refused(422, "reason_required", "a case export needs a reason; nothing was exported")
        if room.key is None:
            raise Refused(503, "no_signing_key", "the hub has no signing key (--signing-key), so it cannot sign a case"
                                                 " bundle; nothing was exported")
        if bool(body.record_ids) == bool(body.kind and body.value):
            raise Refused(422, "case_selection", "name either record ids or one identity (kind and value);"
                                                 " nothing was exported")
        selection = case_export.Selection(tuple(body.record_ids), body.kind, body.value)
        try:
            bundle = case_export.export(room.store, selection, user.username, body.reason, room.key)
        except case_bundle.CaseBundleError as exc:
            raise Refused(404, f"case.{exc.code or 'not_found'}", f"the case cannot be exported: {exc}",
                          **exc.vals) from exc
        return Response(case_bundle.zip_bytes(bundle), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="case-{bundle.manifest.case_id}.zip"',
                                 "X-Manifest-Sha256": bundle.manifest_sha256})

    return r
