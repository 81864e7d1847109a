"""Control-room routes of model roll-out (docs/model-rollout.md): every station's active and candidate
model with its canary figures, the hub's packages and roll-outs, and staging a roll-out (admins).

Packages are uploaded and signed with `edge-hub model upload|sign` by an admin holding the model-signing
key (it never lies on the hub's web server); the control room stages roll-outs of signed packages into the
same folder (`ControlRoomConfig.models_dir`, `edge-hub run --models-dir`), which the hub delivers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central_sync.control_room import audit, auth
from central_sync.control_room.refusals import Refused
from central_sync.hub.stations import station_view
from central_sync.model_delivery import Criteria, ModelRepo, RolloutError, Target

if TYPE_CHECKING:
    from central_sync.control_room.service import ControlRoom


class RolloutIn(BaseModel):
    """One station (`stations` with one id), a `percent` of the known stations, or all (neither)."""

    model_config = ConfigDict(extra="forbid")

    package: str = Field(min_length=1, max_length=200)
    stations: list[str] | None = Field(None, max_length=1000)
    percent: float | None = Field(None, gt=0, le=100)
    criteria: Criteria = Criteria()


def build_model_router(room: ControlRoom, need: Callable[[str], Callable[..., auth.User]]) -> APIRouter:
    store, folder = room.store, room.cfg.models_dir
    r = APIRouter(prefix="/cr/api/models")

    def repo() -> ModelRepo:
        if folder is None:
            raise Refused(409, "models.no_folder", "the hub runs without a model folder (edge-hub run --models-dir);"
                          " no roll-outs")
        return ModelRepo(folder)

    @r.get("")
    def models(user: auth.User = Depends(need("models_view"))) -> dict:
        stations = [{"station": v["station"], "state": v["state"], "models": v["models"]}
                    for v in (station_view(row, stale_s=room.cfg.stale_s) for row in store.stations())]
        if folder is None:
            return {"enabled": False, "packages": [], "rollouts": [], "stations": stations}
        held = repo()
        return {"enabled": True, "packages": held.packages(),
                "rollouts": [x.model_dump(mode="json") for x in reversed(held.rollouts()[-50:])], "stations": stations}

    @r.post("/rollouts")
    def stage(body: RolloutIn, user: auth.User = Depends(need("models_rollout"))) -> dict:
        try:
            target = Target(stations=tuple(body.stations) if body.stations else None, percent=body.percent)
            record = repo().stage(body.package, target, body.criteria, store.station_ids(), staged_by=user.username)
        except RolloutError as exc:
            raise Refused(409, f"models.{exc.code}", str(exc), **exc.vals) from exc
        except ValidationError as exc:
            raise Refused(409, "models.rollout_refused", str(exc)) from exc
        audit.append(store, user.username, "models.rollout_staged", body.package, record.model_dump(mode="json"))
        return record.model_dump(mode="json")

    return r
