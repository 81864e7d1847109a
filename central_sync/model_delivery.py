"""Signed model roll-out hub -> station: the roll-out record, its wire form, the hub's package store and sender.

Topics (MQTT v5, QoS 1), carried exactly as risk bundles are (central_sync.risk_delivery: chunks under
the broker's packet limit, an end-to-end ack, re-sent until acknowledged):

    cpe/v1/{s}/model        hub -> station, one chunk of a roll-out envelope
    cpe/v1/{s}/model/ack    station -> hub, RiskAck {"version": roll-out id, "sha256", "outcome", "code"}

Roll-out envelope: b"CPEMR1\\n" + header + b"\\n" + the signed package (models.signing: the admin's Ed25519
signature over the package statement; the station checks it). The header is the roll-out's
{"rollout": id, "criteria": Criteria, "package_sha256": sha256 of the package that follows}; a hub with a command
key (`edge-hub run --signing-key`) sends it as {"header": "<that JSON>", "sig": "<base64>"}, the signature over
HEADER_CONTEXT + the header's bytes, so the criteria cannot be changed in transit and belong to that package. A
station that pins the hub's key (`[commands] hub_public_key`) takes signed headers only; one that does not runs
every roll-out under the default criteria (docs/model-rollout.md).

The hub keeps packages and roll-outs in a folder (`edge-hub run --models-dir`, written by
`edge-hub model upload|sign|rollout` and the control room):

    packages/{name}-{version}/   manifest.toml, model.onnx, MODEL.md, signature.json
    rollouts.json                every roll-out staged, newest last

`ModelDelivery` delivers the newest roll-out to the stations it names (all when it names none), re-reading
the folder every few seconds; a station's retained status (`models`) says whether it takes packages and
which roll-out it last answered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central_sync.config import BrokerConfig
from central_sync.errors import SyncError
from central_sync.protocol import StatusMsg
from central_sync.risk_delivery import AckSink, Offer, RiskAck, RiskDelivery
from models.errors import ModelError
from models.manifest import MANIFEST_FILE, MODEL_FILE, load_manifest, read_verified_model
from models.signing import CARD_FILE, SIGNATURE_FILE, pack, sign_package

MAGIC = b"CPEMR1\n"
HEADER_CONTEXT = b"cpe-model-rollout-header/1\n"  # what the hub's command key signs is never a command
LEAF = "model"


class RolloutError(SyncError):
    """A package or roll-out the hub cannot take (no such package, unsigned, bad target, bad folder); the message
    one sentence with the values, `code` and `vals` the same for a translation (the control room's
    error.models.<code>)."""

    def __init__(self, message: str, code: str = "rollout_refused", **vals: object) -> None:
        super().__init__(message)
        self.code, self.vals = code, vals


class HeaderSignatureError(RolloutError):
    """A roll-out header that is unsigned, or whose signature does not verify, where the hub's key is pinned."""


class Criteria(BaseModel):
    """When a candidate on canary is promoted or rolled back (set with the roll-out)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # 1e999 turned the latency gate off

    min_items: int = Field(50, ge=1, le=1_000_000, description="live items compared before a promotion")
    min_agreement: float = Field(0.95, ge=0, le=1, description="share of items where both models found the same classes")
    p95_ms: float = Field(500.0, gt=0, le=600_000, description="the candidate's 95th percentile latency per item, at most")
    max_misses: int = Field(5, ge=0, description="items over p95_ms tolerated; one more rolls back")
    max_items: int | None = Field(None, ge=1, description="items after which a candidate not yet promoted rolls "
                                                          "back (default 4 x min_items)")

    @property
    def give_up_after(self) -> int:
        return self.max_items or 4 * self.min_items



class Target(BaseModel):
    """Which stations: `stations` named, or `percent` of those known, or all (neither)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stations: tuple[str, ...] | None = None
    percent: float | None = Field(None, gt=0, le=100)


class RolloutRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(ge=1)
    package: str  # "{name}-{version}"
    sha256: str  # of the model
    stations: tuple[str, ...] | None  # None: every station that takes packages
    criteria: Criteria
    staged_by: str
    at: float


class RolloutHeader(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout: int = Field(ge=1)
    criteria: Criteria
    package_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # of the package that follows


class SignedHeader(BaseModel):
    """A header as a hub with a command key sends it: the header's JSON exactly as signed, and the signature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: str = Field(max_length=4096)
    sig: str = Field(max_length=128)


@dataclass(frozen=True)
class Opened:
    """An envelope taken apart: the header, the package, and the header's signature if it came signed."""

    header: RolloutHeader
    package: bytes
    signed: SignedHeader | None

    def verify(self, key: Ed25519PublicKey) -> None:
        """HeaderSignatureError unless the header is signed by `key` (the hub's command key)."""
        if self.signed is None:
            raise HeaderSignatureError(f"model roll-out {self.header.rollout}'s header is not signed, and this station "
                                       f"pins the hub's key: its criteria could have been changed on the way")
        try:
            key.verify(base64.b64decode(self.signed.sig, validate=True), HEADER_CONTEXT + self.signed.header.encode())
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise HeaderSignatureError(f"model roll-out {self.header.rollout}'s header signature does not verify "
                                       f"against the hub's pinned key") from exc


def envelope(record: RolloutRecord, package: bytes, key: Ed25519PrivateKey | None = None) -> bytes:
    """The wire form of a roll-out of `package`; its header signed with the hub's command key when given."""
    header = RolloutHeader(rollout=record.id, criteria=record.criteria,
                           package_sha256=hashlib.sha256(package).hexdigest()).model_dump_json()
    if key is not None:
        sig = base64.b64encode(key.sign(HEADER_CONTEXT + header.encode())).decode()
        header = SignedHeader(header=header, sig=sig).model_dump_json()
    return MAGIC + header.encode() + b"\n" + package


def open_envelope(data: bytes) -> Opened:
    """The roll-out header (checked against the package it names) and the signed package; RolloutError when the
    wrapping is not one. The header's own signature is checked by Opened.verify."""
    head, sep, package = data[len(MAGIC):].partition(b"\n")
    if not data.startswith(MAGIC) or not sep:
        raise RolloutError(f"model roll-out envelope of {len(data)} bytes does not start with {MAGIC!r} and a header")
    signed: SignedHeader | None = None
    try:
        if head.startswith(b'{"header"'):
            signed = SignedHeader.model_validate_json(head)
            head = signed.header.encode()
        header = RolloutHeader.model_validate_json(head)
    except ValidationError as exc:
        raise RolloutError(f"model roll-out header is invalid: {exc.errors()[0]['msg']}") from exc
    carried = hashlib.sha256(package).hexdigest()
    if header.package_sha256 is not None and header.package_sha256 != carried:
        raise RolloutError(f"model roll-out {header.rollout}'s header names package {header.package_sha256[:12]}, "
                           f"the envelope carries {carried[:12]}")
    if signed is not None and header.package_sha256 is None:
        raise RolloutError(f"model roll-out {header.rollout}'s signed header names no package")
    return Opened(header, package, signed)


def choose(target: Target, known: Iterable[str], rollout_id: int) -> tuple[str, ...] | None:
    """The stations of a roll-out: those named, a stable pseudo-random `percent` of `known` (at least one), or None (all)."""
    if target.stations:
        return tuple(sorted(set(target.stations)))
    if target.percent is None:
        return None
    pool = sorted(set(known), key=lambda s: hashlib.sha256(f"{rollout_id}:{s}".encode()).hexdigest())
    if not pool:
        raise RolloutError("a roll-out to a percentage of stations needs known stations; the hub knows none yet",
                           "no_stations", percent=f"{target.percent:g}")
    return tuple(sorted(pool[:max(1, math.ceil(len(pool) * target.percent / 100))]))


class ModelRepo:
    """The hub's folder of packages and roll-outs (one writer at a time: the CLI or the control room)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        (self.folder / "packages").mkdir(parents=True, exist_ok=True)

    def package_dir(self, package: str) -> Path:
        path = self.folder / "packages" / package
        if not (path / MANIFEST_FILE).exists():
            raise RolloutError(f"the hub holds no model package {package!r} under {self.folder / 'packages'}",
                               "unknown_package", package=package)
        return path

    def upload(self, src: Path) -> str:
        """Copy a package (manifest.toml, model.onnx, MODEL.md) in after checking its manifest and hash."""
        try:
            manifest = load_manifest(src)
            read_verified_model(src, manifest)
        except ModelError as exc:
            raise RolloutError(f"model package {src} is not uploaded: {exc}") from exc
        name = f"{manifest.name}-{manifest.version}"
        dest = self.folder / "packages" / name
        tmp = dest.with_name(name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for file in (MANIFEST_FILE, MODEL_FILE, CARD_FILE):
            if (src / file).exists():
                shutil.copyfile(src / file, tmp / file)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        return name

    def sign(self, package: str, key: Ed25519PrivateKey, key_id: str, *, allow_downgrade: bool = False,
             signer: str = "admin") -> dict[str, Any]:
        try:
            return sign_package(self.package_dir(package), key, key_id, allow_downgrade=allow_downgrade, signer=signer)
        except ModelError as exc:
            raise RolloutError(str(exc)) from exc

    def packages(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted((self.folder / "packages").glob(f"*/{MANIFEST_FILE}")):
            sig = path.parent / SIGNATURE_FILE
            statement = json.loads(sig.read_text("utf-8"))["statement"] if sig.exists() else None
            m = load_manifest(path.parent)
            out.append({"package": path.parent.name, "name": m.name, "version": m.version, "sha256": m.sha256,
                        "signed": statement is not None, "allow_downgrade": bool(statement and statement["allow_downgrade"]),
                        "signed_by": statement["signer"] if statement else None})
        return out

    def rollouts(self) -> list[RolloutRecord]:
        path = self.folder / "rollouts.json"
        if not path.exists():
            return []
        return [RolloutRecord.model_validate(r) for r in json.loads(path.read_text("utf-8"))]

    def stage(self, package: str, target: Target, criteria: Criteria, known: Iterable[str],
              staged_by: str = "admin") -> RolloutRecord:
        """Record a roll-out of a signed package; the running hub delivers it."""
        folder = self.package_dir(package)
        if not (folder / SIGNATURE_FILE).exists():
            raise RolloutError(f"model package {package} is not signed; an admin signs it first (edge-hub model sign)",
                               "unsigned", package=package)
        done = self.rollouts()
        record = RolloutRecord(id=(done[-1].id + 1) if done else 1, package=package,
                               sha256=load_manifest(folder).sha256, stations=choose(target, known, len(done) + 1),
                               criteria=criteria, staged_by=staged_by, at=time.time())
        tmp = self.folder / "rollouts.json.tmp"
        tmp.write_text(json.dumps([r.model_dump(mode="json") for r in [*done, record]], indent=1), "utf-8")
        os.replace(tmp, self.folder / "rollouts.json")
        return record

    def offer(self, key: Ed25519PrivateKey | None = None) -> Offer | None:
        """The newest roll-out as a delivery offer (its header signed with `key`, the hub's command key), or None."""
        done = self.rollouts()
        if not done:
            return None
        record = done[-1]
        data = envelope(record, pack(self.package_dir(record.package)), key)
        return Offer(record.id, data, stations=frozenset(record.stations) if record.stations is not None else None)


def model_fields(msg: StatusMsg) -> tuple[bool, int | None]:
    """A station takes packages when its status reports `models`; the roll-out it answered last."""
    return msg.models is not None, msg.models.rollout if msg.models is not None else None


class ModelDelivery:
    """The hub's package sender: RiskDelivery on the `model` topics, fed from the repo's newest roll-out.

        async with ModelDelivery(broker, "hub-a", ModelRepo(path), store_acks(store), key=command_key):
            ...  # `edge-hub model rollout` (or the control room) stages; this delivers, headers signed with `key`
    """

    def __init__(self, broker: BrokerConfig, hub_id: str, repo: ModelRepo, on_ack: AckSink | None = None,
                 resend_s: float = 60.0, poll_s: float = 2.0, key: Ed25519PrivateKey | None = None) -> None:
        self.repo, self.poll_s, self.on_ack, self.key = repo, poll_s, on_ack, key
        self.acks: dict[str, RiskAck] = {}  # each station's latest answer
        self.delivery = RiskDelivery(broker, hub_id, self._acked, resend_s, leaf=LEAF, reads=model_fields)
        self._offered: int | None = None
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "ModelDelivery":
        await self.delivery.__aenter__()
        self._task = asyncio.create_task(self._watch(), name="model-rollouts")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        await self.delivery.__aexit__(None, None, None)

    def _acked(self, station: str, ack: RiskAck, at: float) -> None:
        self.acks[station] = ack
        if self.on_ack is not None:
            self.on_ack(station, ack, at)

    async def _watch(self) -> None:
        while True:
            await asyncio.to_thread(self.check)
            await asyncio.sleep(self.poll_s)

    def check(self) -> None:
        """Offer the newest roll-out once it appears (a station answers a duplicate `applied`)."""
        done = self.repo.rollouts()
        if done and done[-1].id != self._offered:
            offer = self.repo.offer(self.key)
            if offer is not None:
                self.delivery.offer(offer)
                self._offered = offer.version

    def stats(self) -> dict:
        return {**self.delivery.stats(), "acks": {s: a.model_dump() for s, a in sorted(self.acks.items())}}

