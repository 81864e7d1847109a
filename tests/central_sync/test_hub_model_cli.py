"""`edge-hub model` in real processes: the admin's key pair, upload, sign, stage (one station, a percentage, all)
and status; an unsigned package is never staged; the control room's staging is for admins only."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.store import UPSERT_STATION, open_store
from models.testgraphs import write_package
from test_hub_cli import hub

from test_control_room_browser import PASSWORD


def model(folder: Path, db: Path, *args: str) -> tuple[int, str]:
    result = hub("model", "--dir", str(folder), "--db", str(db), *args)
    return result.returncode, (result.stdout + result.stderr).strip()


def test_upload_sign_and_stage_from_the_command_line(tmp_path: Path) -> None:
    folder, db = tmp_path / "models", tmp_path / "hub.sqlite3"
    store = open_store(str(db))
    store.migrate()
    for n in range(1, 11):  # ten stations the hub has heard from
        store.query(UPSERT_STATION, (f"gate-{n}", "online", 1, json.dumps({"station": f"gate-{n}"}), 0.0, 0.0))
    store.close()
    src = write_package(tmp_path / "src", version="3.0.0")
    assert model(folder, db, "keygen", "--out", str(tmp_path / "m.key"), "--pub", str(tmp_path / "m.pub"))[0] == 0
    assert (tmp_path / "m.key").stat().st_mode & 0o077 == 0
    assert model(folder, db, "upload", str(src)) == (0, "uploaded test-det-3.0.0")
    code, out = model(folder, db, "rollout", "test-det-3.0.0", "--all")
    assert code == 1 and out == ("edge-hub: model package test-det-3.0.0 is not signed; an admin signs it first "
                                 "(edge-hub model sign)")
    code, out = model(folder, db, "sign", "test-det-3.0.0", "--key", str(tmp_path / "m.key"), "--key-id", "models-1",
                      "--by", "admin-chan")
    assert code == 0 and "allow_downgrade=False" in out
    assert model(folder, db, "rollout", "test-det-3.0.0", "--station", "gate-3") == (0, "roll-out 1: test-det-3.0.0 to gate-3")
    code, out = model(folder, db, "rollout", "test-det-3.0.0", "--percent", "20", "--min-items", "100")
    assert code == 0 and out.startswith("roll-out 2: test-det-3.0.0 to ") and out.count("gate-") == 2
    assert model(folder, db, "rollout", "test-det-3.0.0", "--all")[1] == "roll-out 3: test-det-3.0.0 to all stations"
    code, out = model(folder, db, "status")
    status = json.loads(out)
    assert [r["stations"] for r in status["rollouts"]][::2] == [["gate-3"], None]
    assert status["rollouts"][1]["criteria"]["min_items"] == 100
    assert status["packages"][0]["signed_by"] == "admin-chan" and len(status["stations"]) == 10


async def test_only_an_admin_stages_a_roll_out_and_only_of_a_signed_package(tmp_path: Path) -> None:
    from central_sync.model_delivery import ModelRepo

    repo = ModelRepo(tmp_path / "models")
    name = repo.upload(write_package(tmp_path / "src", version="3.0.0"))
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(models_dir=repo.folder, secure_cookie=False)) as room:
        auth.add_user(store, "admin1", "admin", PASSWORD)
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        app = room.install(create_app(store))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
            body = {"package": name, "stations": ["gate-1"]}
            for user, status in (("sup1", 403), ("admin1", 409)):
                await client.post("/cr/api/login", json={"username": user, "password": PASSWORD})
                answer = await client.post("/cr/api/models/rollouts", json=body)
                assert answer.status_code == status, answer.text
            assert "is not signed" in answer.json()["detail"] and repo.rollouts() == []
            view = (await client.get("/cr/api/models")).json()
            assert view["enabled"] and view["packages"][0]["signed"] is False


def test_the_hub_signs_roll_out_headers_with_its_command_key(tmp_path: Path) -> None:
    """`edge-hub run --signing-key K --models-dir D`: the roll-outs it sends carry headers signed with K (stations
    that pin the hub's key take no other); without a key they go unsigned."""
    from central_sync.commands import generate_keypair
    from central_sync.hub.cli import _model_delivery, _parser
    from central_sync.model_delivery import ModelDelivery

    key = generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    for extra, signs in ((["--signing-key", str(tmp_path / "hub.key")], True), ([], False)):
        args = _parser().parse_args(["run", "--models-dir", str(tmp_path / "models"), *extra])
        delivery = _model_delivery(args, "hub-a")
        assert isinstance(delivery, ModelDelivery)
        assert (delivery.key is not None) == signs
        if signs:
            assert delivery.key.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()  # type: ignore[union-attr]


def test_a_roll_out_option_out_of_range_is_refused_in_one_sentence(tmp_path: Path) -> None:
    """`--agreement 2` or `--percent 150` printed a pydantic traceback; now one sentence naming the option, exit 1."""
    folder, db = tmp_path / "models", tmp_path / "hub.sqlite3"
    assert model(folder, db, "rollout", "test-det-3.0.0", "--station", "gate-1", "--agreement", "2") == (
        1, "edge-hub: --agreement 2.0: input should be less than or equal to 1; nothing staged")
    assert model(folder, db, "rollout", "test-det-3.0.0", "--percent", "150") == (
        1, "edge-hub: --percent 150.0: input should be less than or equal to 100; nothing staged")
