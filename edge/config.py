"""The station config: one TOML file per station, validated once at start.

Unknown keys are errors; every error names its key path and the file. Environment variables
`EDGE_<SECTION>__<KEY>` override the file (e.g. `EDGE_HTTP__PORT=8081`), which is how systemd
units and the demo launcher adjust ports without editing the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from appliance.https import plain_http_problem
from central_sync.config import SyncConfig
from central_sync.schema import ItemKind
from drivers.camera.config import CameraConfig
from drivers.plc.config import PlcConfig
from drivers.retrofit.config import RetrofitConfig
from drivers.rfid.config import LlrpConfig, ReaderConfig
from drivers.seal.config import SealReaderConfig, check_reads_seals
from drivers.xray.config import ScannerConfig
from edge.commands import CommandsConfig
from edge.model_rollout import RolloutConfig
from edge.risk import RiskConfig
from edge.identity import TAG_HOLD_S, TAG_HOLD_S_RANGE
from edge.seals import HOLD_S, HOLD_S_RANGE
from edge.tracking import ENTRY_GAP_M, EXIT_GAP_M
from edge.errors import ConfigError
from edge.web.config import WebConfig
from models.manifest import MAX_TILE_PX

CONFIG_ERROR_EXIT = 78  # EX_CONFIG; the systemd unit lists it in RestartPreventExitStatus


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationSection(_Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    kind: str = Field(description="a station kind declared in edge.stations.kinds: conveyor, gantry, xray")
    lane: str = Field("1", min_length=1, max_length=32, pattern=r"^[^\x00-\x1f\x7f]+$", description="the lane's"
                      " name on every record, screen, printed report and DICOS file: 1 to 32 characters, no control"
                      " characters (100 kB or a newline was taken)")
    item_kind: ItemKind
    budget_ms: float = Field(ge=100, le=600_000, description="end of acquisition to verdict; at least 100 ms (one"
                             " tile of the smallest model takes about 30: a budget of 5 ms sent every item to manual,"
                             " `budget missed`, while the station looked to be working)")
    data_dir: Path
    queue_size: int = Field(4, ge=1, le=64, description="items waiting for inference before overload")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_named(cls, value: object) -> object:
        """`data_dir = ""` was the current folder: the database, scans and lock of the station landed wherever the
        command ran (the unit's WorkingDirectory, shared by every station)."""
        if isinstance(value, str) and not value.strip():
            raise ValueError("data_dir is empty: name the station's own folder, e.g. /var/lib/checkpoint-edge/gantry-01")
        return value


class ModelSection(_Section):
    dir: Path | None = Field(None, description="model package; None = the default shipped model")
    threads: int = Field(1, ge=1, le=16, description="onnxruntime intra-op threads per inference")
    pool_workers: int = Field(1, ge=1, le=16, description="inferences at once, shared by the process's stations")
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    shadow_dir: Path | None = None
    thresholds: dict[str, Annotated[float, Field(strict=True, gt=0, le=1)]] = Field(
        default_factory=dict, description="per-class overrides, each in (0, 1] (a number; true was read as 1.0; one"
        " outside left the station without its model, every item manual, after `check-config` said ok)")
    max_tile_px: int = Field(MAX_TILE_PX, ge=32, le=16384, description="the longest tile side (pixels) the station"
                             " runs: a model asking for larger tiles ([input] size; a graph that leaves the size open"
                             " takes what its manifest asks) is refused at load, every item manual")
    dense_alert_mm2: float = Field(
        100.0, ge=0, description="a bag or parcel with a region the beam cannot penetrate at least this large is not"
        " cleared (manual, dense_object); 0 turns the rule off")

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, providers: tuple[str, ...]) -> tuple[str, ...]:
        """Names onnxruntime knows (one this host lacks falls back to the CPU at load, on purpose): a misspelt
        `CUDAExecutonProvider` ran every scan on the CPU without a word, budgets missed, items manual."""
        if not providers:
            raise ValueError("name at least one onnxruntime execution provider, e.g. CPUExecutionProvider")
        if set(providers) <= {"CPUExecutionProvider"}:
            return providers
        import onnxruntime

        known = onnxruntime.get_all_providers()
        if unknown := [p for p in providers if p not in known]:
            raise ValueError(f"{', '.join(map(repr, unknown))} is no onnxruntime execution provider (they are"
                             f" {', '.join(known)})")
        return providers


class StoreSection(_Section):
    reserve_mb: int = Field(256, ge=1)
    scan_cap_mb: int = Field(20_480, ge=1)
    retention_days: float | None = Field(None, gt=0, description="days every synced record is kept until the hub's"
                                         " retention state arrives (docs/retention-and-holds.md); none: keep all")


class ConveyorSection(_Section):
    """Belt geometry (m from the loading point) and speed; the verdict deadline follows from it."""

    entry_m: float = Field(0.5, ge=0)
    exit_m: float = Field(1.3, gt=0)
    gate_m: float = Field(2.8, gt=0)
    actuation_s: float = Field(0.15, ge=0)
    gate_latency_s: float = Field(0.05, ge=0, le=2.0, description="gate command latency assumed until measured")
    belt_speed_m_s: float = Field(0.3, gt=0, le=2.0)
    entry_gap_m: float = Field(ENTRY_GAP_M, ge=0, le=0.1, description="the tunnel entry's beam blocked again within"
                               " this belt travel (m, by the encoder) after it cleared is the same bag (a strap, a bag"
                               " rolling back out of the beam): no second record; keep it below the gap between bags")
    exit_gap_m: float = Field(EXIT_GAP_M, ge=0, le=0.1, description="the X-ray exit's beam blocked again within this"
                              " belt travel (m, by the encoder) after it cleared is the same bag (a strap, a gap between"
                              " two parts): its scan goes on, and a bag's scan ends only this far after its tail left"
                              " the beam (the verdict budget is that much shorter); keep it below the gap between bags")
    start_belt: bool = Field(True, description="request the belt to run when the daemon starts")

    @model_validator(mode="after")
    def _ordered(self) -> "ConveyorSection":
        if not self.entry_m < self.exit_m < self.gate_m:
            raise ValueError(f"positions must increase along the belt: entry {self.entry_m}, exit {self.exit_m},"
                             f" gate {self.gate_m}")
        return self


class GantrySection(_Section):
    """The gantry lane: how many vehicles may stand between the scanner and the barrier, how long a vehicle
    whose scan failed is read at the entry, and how the vehicle loops' edges are debounced."""

    queue: int = Field(1, ge=1, le=10, description="vehicles between scanner and barrier; when that many are in"
                       " the lane (the first waiting for an officer), the entry light stays red and nothing is"
                       " scanned; 1 scans the next vehicle only once the last has left")
    identify_s: float = Field(2.0, ge=0, le=30, description="a vehicle whose scan fails at once (scanner lost,"
                              " interlocks open) is still at the entry: its tags and cameras are read this long"
                              " after it entered before its `manual` record is written; a scanned vehicle is read"
                              " during its scan")
    loop_gap_s: float = Field(0.5, ge=0, le=10, description="how long a vehicle loop stays free between two"
                              " vehicles: the entry loop blocked again sooner (a trailer behind its cab, a loop that"
                              " chatters) is the same vehicle, counted as a flap; a vehicle has left over an exit"
                              " loop once it stayed free this long")
    loop_occupied_s: float = Field(0.2, ge=0, le=10, description="how long a vehicle passing an exit loop occupies"
                                   " it at least: a shorter blip is a flap, not a vehicle leaving")
    separator_wait_s: float = Field(0.5, ge=0, le=5, description="with a vehicle separator: how long after the entry"
                                    " loop is blocked again within loop_gap_s the separator's beam may take to break"
                                    " for it to be a vehicle following (else a loop fault, no vehicle); at least the"
                                    " beam's distance from the loop's detection edge at the slowest entry speed"
                                    " (0.3 m at 1 m/s: 0.3 s)")


class HttpSection(_Section):
    """The station screen's server: HTTPS with `cert_file` and `key_file`; plain HTTP on loopback only."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    cert_file: Path | None = Field(None, description="PEM certificate (and chain) the screen serves over HTTPS")
    key_file: Path | None = Field(None, description="its private key (PEM)")
    allow_plain_http: bool = Field(False, description="serve plain HTTP on a non-loopback address (a lab only; "
                                   "logged as a warning at every start)")

    @model_validator(mode="after")
    def _tls_or_loopback(self) -> "HttpSection":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        if (problem := plain_http_problem(self.host, self.cert_file is not None, self.allow_plain_http)) is not None:
            raise ValueError(f"{problem} (http.cert_file and http.key_file, or http.allow_plain_http = true)")
        return self


class DevicesSection(_Section):
    plc: PlcConfig | None = None
    scanner: ScannerConfig | None = None
    source: RetrofitConfig | None = None
    readers: dict[str, ReaderConfig] = Field(default_factory=dict)
    cameras: dict[str, CameraConfig] = Field(default_factory=dict)
    seals: dict[str, SealReaderConfig] = Field(default_factory=dict, description="e-seal readers (drivers.seal)")

    @model_validator(mode="after")
    def _seal_readers_name_uhf_readers(self) -> "DevicesSection":
        """A seal-llrp reader that names a station reader names an LLRP one that reads seal memory."""
        for name, seal in self.seals.items():
            ref = getattr(seal, "reader", None)
            if isinstance(ref, str):
                reader = self.readers.get(ref)
                if not isinstance(reader, LlrpConfig):
                    raise ValueError(f"devices.seals.{name}.reader names {ref!r}, which is not an LLRP reader "
                                     f"under devices.readers")
                check_reads_seals(reader, f"devices.readers.{ref}")
        return self


class SealsSection(_Section):
    """Whether this lane's items are declared sealed, and which seal numbers (none: any seal), until
    declarations arrive (issue 18); a declared seal missing, opened or tampered sends the item to manual."""

    declared_sealed: bool = False
    expected: tuple[str, ...] = Field(default=(), description="seal numbers expected on this lane's items")
    item_kinds: tuple[ItemKind, ...] = (ItemKind.CONTAINER, ItemKind.VEHICLE)
    hold_s: float = Field(HOLD_S, ge=HOLD_S_RANGE[0], le=HOLD_S_RANGE[1], allow_inf_nan=False,
                          description="seconds a seal that left the range stays its item's (no other item takes it); "
                                      "a gantry ends it when the vehicle has left the lane")


class TagsSection(_Section):
    """The readers' tags on the items' records (edge/stations/identify.py)."""

    hold_s: float = Field(TAG_HOLD_S, ge=TAG_HOLD_S_RANGE[0], le=TAG_HOLD_S_RANGE[1], allow_inf_nan=False,
                          description="seconds a tag recorded on an item stays remembered as that item's after it left "
                                      "the field and the record was written: read again meanwhile during another "
                                      "item, it joins that item flagged (tag_reread), never silently")


class HistorySection(_Section):
    """A vehicle's history (edge/history.py): the hub's API to ask for references, and the local cache."""

    hub_url: str = Field("", description="the hub's API, e.g. https://hub.example:8443 (empty: no history)")
    token_file: Path | None = Field(None, description="file holding this station's hub API service token")
    timeout_s: float = Field(3.0, gt=0, le=60, description="one request to the hub, at most")
    max_age_days: float = Field(365.0, gt=0, le=3650, description="a reference is a pass at most this old")
    references: int = Field(2, ge=1, le=5, description="references fetched per vehicle (newest first); the comparison"
                            " uses the newest, its regions corroborated by the second when there are two")
    cache_entries: int = Field(500, ge=1, description="vehicles the local cache holds, at most")
    cache_bytes: int = Field(2 * 1024**3, ge=1024**2, description="bytes the local cache holds, at most")
    compare_budget_s: float = Field(5.0, gt=0, le=120, description="the comparison after the scan, at most")


class StationConfig(BaseSettings):
    """The whole station config tree."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, env_prefix="EDGE_",
                                      env_nested_delimiter="__")

    station: StationSection
    model: ModelSection = ModelSection()
    store: StoreSection = StoreSection()
    devices: DevicesSection = DevicesSection()
    sync: SyncConfig | None = None
    web: WebConfig = WebConfig()
    http: HttpSection = HttpSection()
    conveyor: ConveyorSection = ConveyorSection()
    gantry: GantrySection = GantrySection()
    seals: SealsSection = SealsSection()
    tags: TagsSection = TagsSection()
    commands: CommandsConfig = CommandsConfig()
    risk: RiskConfig | None = None  # risk assessment (edge/risk.py); without it items are judged by the detector alone
    rollout: RolloutConfig | None = None  # signed model roll-out with canary (edge/model_rollout.py); without it: none
    history: HistorySection = HistorySection()
    log_format: Literal["json", "console"] = "json"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, *_: PydanticBaseSettingsSource,
                                   **__: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings

    @model_validator(mode="after")
    def _devices_fit_kind(self) -> "StationConfig":
        """The kind is declared (edge.stations.kinds) and the devices are what it needs."""
        from edge.stations.kinds import KINDS

        kind = KINDS.get(self.station.kind)
        if kind is None:
            raise ValueError(f"station.kind {self.station.kind!r} is not one of {', '.join(KINDS)}")
        problems = kind.problems(self.devices)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load_config(path: str | Path) -> StationConfig:
    """Read and validate a station config; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, [("<file>", f"cannot be read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [("<file>", f"is not UTF-8 text (byte {exc.start}): not a TOML config")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [("<toml>", str(exc))]) from exc
    if problems := _env_problems(os.environ):
        raise ConfigError(path, problems)
    try:
        config = StationConfig(**data)
    except ValidationError as exc:
        raise ConfigError(path, [_describe(err) for err in exc.errors()]) from exc
    except SettingsError as exc:  # a key deeper down that takes JSON (EDGE_MODEL__THRESHOLDS=knife): was a traceback
        section = found.group(1) if (found := re.search(r'field "(\w+)"', str(exc))) else ""
        names = [f"${name}" for name in sorted(os.environ) if name.lower().startswith(f"edge_{section}__")]
        raise ConfigError(path, [(", ".join(names) or "<environment>", f"is not the JSON its key takes"
                                  f" ({exc.__cause__ or exc}), e.g. EDGE_MODEL__THRESHOLDS='{{\"knife\": 0.4}}'")]) from exc
    if problems := _non_finite(config, ""):
        raise ConfigError(path, problems)
    return config


def _non_finite(value: object, key: str) -> list[tuple[str, str]]:
    """Every float of the validated config that is inf or nan (TOML and the EDGE_ overrides both spell them), as
    (key path, message). Keys bounded only from below took inf: `conveyor.gate_m = inf` put the gate out of reach (a
    bag never diverted), `web.session_max_h = inf` sessions that never end, `model.dense_alert_mm2 = inf` the dense
    object rule off without saying so (0 is its documented off), `sync.ack_timeout_s = inf` records never resent."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(key, f"Input should be a finite number (got {value!r})")]
    if isinstance(value, BaseModel):
        return [p for name in type(value).model_fields
                for p in _non_finite(getattr(value, name), f"{key}.{name}" if key else name)]
    if isinstance(value, Mapping):
        return [p for name, item in value.items() for p in _non_finite(item, f"{key}.{name}")]
    if isinstance(value, (tuple, list)):
        return [p for index, item in enumerate(value) for p in _non_finite(item, f"{key}.{index}")]
    return []


def _env_problems(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """Overrides that set nothing: EDGE_<SECTION>__<KEY> naming no section, or a section and key joined by one
    underscore (EDGE_HTTP_PORT, silently ignored before). Other programs' names (EDGE_HUB_DB) are left alone."""
    fields = set(StationConfig.model_fields)
    problems = []
    for name in sorted(environ):
        rest = name[len("EDGE_"):].lower() if name.startswith("EDGE_") else None
        if rest in (sections := _sections()) and not _json_object(environ[name], optional=sections[rest]):
            # pydantic-settings raised SettingsError with a traceback: exit 1, restarted by systemd for ever
            problems.append((f"${name}", f"is not a JSON object (got {_shown(environ[name])}): it replaces the whole"
                             f" [{rest}] section; one key is EDGE_{rest.upper()}__<KEY>"))
            continue
        if rest is None or rest in fields:
            continue
        head, nested, _ = rest.partition("__")
        if nested and head not in fields:
            problems.append((f"${name}", f"names no section of the config (they are {', '.join(sorted(fields))})"))
        elif not nested and (section := next((f for f in fields if rest.startswith(f + "_")), None)):
            key = rest[len(section) + 1:].upper()
            problems.append((f"${name}", f"sets nothing: a key of [{section}] is EDGE_{section.upper()}__{key}"))
    return problems


def _sections() -> dict[str, bool]:
    """The top-level keys that are tables (EDGE_HTTP='{"port": 8081}' sets one whole), not values (EDGE_LOG_FORMAT),
    each with whether it may be left out (EDGE_SYNC=null: no sync)."""
    return {name: type(None) in get_args(field.annotation) for name, field in StationConfig.model_fields.items()
            if any(isinstance(t, type) and issubclass(t, BaseModel) for t in (field.annotation, *get_args(field.annotation)))}


def _json_object(text: str, optional: bool) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) or (optional and value is None)


def unreadable_files(config: StationConfig) -> list[tuple[str, str]]:
    """Files and folders the config names that cannot be read here, as (key path, message).

    `edge check-config` reports them; the daemon starts anyway (a sync fault never stops inspection)
    and raises an alarm instead.
    """
    problems = [(key, f"{path} is not a directory") for key, path in _named_dirs(config)
                if path is not None and not path.is_dir()]
    for key, path in _named_files(config):
        if path is None:
            continue
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError as exc:
            problems.append((key, f"{path} cannot be read: {exc.strerror}"))
            continue
        if not head.strip():
            problems.append((key, f"{path} is empty"))
    return problems


def _named_dirs(config: StationConfig) -> list[tuple[str, Path | None]]:
    return [("model.dir", config.model.dir), ("model.shadow_dir", config.model.shadow_dir)]


def _named_files(config: StationConfig) -> list[tuple[str, Path | None]]:
    named: list[tuple[str, Path | None]] = [("http.cert_file", config.http.cert_file),
                                            ("http.key_file", config.http.key_file)]
    if (sync := config.sync) is not None:
        if sync.tls is not None:
            named += [("sync.tls.ca_file", sync.tls.ca_file), ("sync.tls.cert_file", sync.tls.cert_file),
                      ("sync.tls.key_file", sync.tls.key_file)]
        named.append(("sync.password_file", sync.password_file))
    named.append(("commands.hub_public_key", config.commands.hub_public_key))
    if config.risk is not None:
        named += [(f"risk.keys.{key_id}", path) for key_id, path in config.risk.keys.items()]
    if config.rollout is not None:
        named += [(f"rollout.keys.{key_id}", path) for key_id, path in config.rollout.keys.items()]
    return named


def _describe(err: ErrorDetails) -> tuple[str, str]:
    key = ".".join(str(p) for p in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return key, "unknown key"
    if err["type"] == "missing":
        return key, "required key is missing"
    value = err.get("input")
    shown = f" (got {_shown(value)})" if value is not None and not isinstance(value, dict) else ""
    return key, f"{err['msg']}{shown}"


SHOWN_MAX = 80  # characters of a refused value an error line repeats


def _shown(value: object) -> str:
    """The value's repr, its head only when long: a station id of 100000 characters made a config error of 100 kB
    (one line in the journal that nobody reads to its end)."""
    text = repr(value)
    if len(text) <= SHOWN_MAX:
        return text
    size = f", {len(value)} characters" if isinstance(value, (str, bytes, list, tuple)) else ""
    return f"{text[:SHOWN_MAX]}...{size}"
