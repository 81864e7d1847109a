"""The release: `scripts/package` builds a wheel and a Debian package. Installed into a chroot-like
root (`dpkg-deb -x`, then the package's maintainer scripts with DPKG_ROOT, as `dpkg --root` runs
them), the station runs from its own virtual environment against the simulators; the next release
upgrades it in place: the services stopped and started again, its new schema migration applied,
every inspection kept.

For speed the test's packages carry the project's wheel only and the installed venv takes the
dependencies from this test environment (CHECKPOINT_EDGE_TEST_SITE, a .pth file); a release
package carries every dependency's wheel and postinst installs them offline (docs/deployment.md)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from central_sync.devtools import free_port
from models.testgraphs import write_package
from polling import wait_until

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "edge"))
from test_daemon import _write_config  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")]
STATION = "xray-test"
INSTALLED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed release, not this checkout


def _build(src: Path, out: Path, version: str) -> subprocess.Popen:
    return subprocess.Popen([str(REPO / "scripts" / "package"), "--src", str(src), "--out", str(out), "--version", version,
                             "--no-dependency-wheels"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _built(proc: subprocess.Popen) -> Path:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return Path(out.split()[-1])


def _copy_of_the_repository(dest: Path) -> None:
    """This repository's tracked and untracked (not ignored) files, copied under `dest` (a release's source tree)."""
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


def _source_with_a_new_migration(dest: Path) -> Path:
    """This repository's files, with one more station schema migration (what the next release brings)."""
    _copy_of_the_repository(dest)
    store = dest / "edge" / "store.py"
    text = store.read_text()
    end = text.index("\n)\n", text.index("MIGRATIONS: tuple[str, ...] = ("))
    store.write_text(text[:end] + '\n    # the next release: a table the upgrade test finds\n'
                     '    "CREATE TABLE upgrade_probe (x INTEGER);",' + text[end:])
    return dest


def _fresh_root(root: Path) -> None:
    """An empty system root with the account files useradd --prefix edits."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\ndialout:x:20:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "gshadow").write_text("root:*::\ndialout:*::\n")
    for name in ("shadow", "gshadow"):
        (root / "etc" / name).chmod(0o600)


def _script(deb_info: Path, name: str, root: Path, *args: str) -> str:
    env = {**os.environ, "DPKG_ROOT": str(root), "CHECKPOINT_EDGE_PYTHON": sys.executable,
           "CHECKPOINT_EDGE_TEST_SITE": sysconfig.get_paths()["purelib"]}
    done = subprocess.run([str(deb_info / name), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{name} {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def _unpack(deb: Path, root: Path, info: Path) -> Path:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    subprocess.run(["dpkg-deb", "-e", str(deb), str(info)], check=True)
    return info


def _inspections(db: Path) -> list[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return [r[0] for r in conn.execute("SELECT id FROM inspections ORDER BY seq")]
    except sqlite3.OperationalError:
        return []


def _health(port: int) -> dict | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
    except httpx.HTTPError:
        return None


def _run_station(root: Path, config: Path, port: int, version: str, db: Path, more_than: int, log: Path) -> list[str]:
    """`edge run` from the installed venv until it serves `version` and has committed more than `more_than` records."""
    with log.open("ab") as out:
        proc = subprocess.Popen([str(root / "opt/checkpoint-edge/.venv/bin/edge"), "run", "--config", str(config)],
                                cwd=root, stdout=out, stderr=subprocess.STDOUT, env=INSTALLED_ENV)
        try:
            health = wait_until(lambda: _health(port) or proc.poll() is not None, "the installed station serves",
                                timeout=120, interval=0.2)
            assert proc.poll() is None, log.read_text()
            assert health["version"] == version
            wait_until(lambda: len(_inspections(db)), "more inspections", check=lambda n: n >= more_than + 5,
                       timeout=120, interval=0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log.read_text()
    return _inspections(db)


def test_the_package_installs_runs_the_station_and_upgrades_it_keeping_every_inspection(tmp_path):
    builds = [_build(REPO, tmp_path / "v1", "0.1.0"),
              _build(_source_with_a_new_migration(tmp_path / "src-next"), tmp_path / "v2", "0.1.1")]
    deb1, deb2 = (_built(b) for b in builds)
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    assert (deb1.name, deb2.name) == (f"checkpoint-edge_0.1.0_{arch}.deb", f"checkpoint-edge_0.1.1_{arch}.deb")
    assert (tmp_path / "v1" / "checkpoint_edge-0.1.0-py3-none-any.whl").is_file()

    root = tmp_path / "root"
    _fresh_root(root)
    info1 = _unpack(deb1, root, tmp_path / "info1")
    said = _script(info1, "postinst", root, "configure")
    app = root / "opt" / "checkpoint-edge"
    edge = app / ".venv" / "bin" / "edge"
    assert subprocess.run([str(edge), "--version"], capture_output=True, text=True, env=INSTALLED_ENV).stdout.strip() == \
        "edge (checkpoint-edge) 0.1.0"
    where = subprocess.run([str(app / ".venv/bin/python"), "-c", "import edge; print(edge.__file__)"], cwd=root,
                           capture_output=True, text=True, env=INSTALLED_ENV).stdout.strip()
    assert where.startswith(str(app / ".venv" / "lib")), where  # the installed copy, not this checkout
    for unit in ("checkpoint-edge@.service", "checkpoint-hub.service"):
        assert (root / "lib/systemd/system" / unit).is_file()
    assert (root / "etc/udev/rules.d/99-checkpoint-edge.rules").is_file()
    assert (root / "usr/share/checkpoint-edge/mosquitto/mosquitto.conf").is_file()
    for folder in ("var/lib/checkpoint-edge", "etc/checkpoint-edge", "var/lib/checkpoint-hub", "etc/checkpoint-hub"):
        assert (root / folder).is_dir()
    if os.geteuid() == 0:
        users = (root / "etc" / "passwd").read_text()
        assert "\ncheckpoint:" in users and "\ncheckpoint-hub:" in users, said
        assert "checkpoint" in (root / "etc" / "group").read_text().split("dialout:")[1].splitlines()[0]
    else:
        assert "cannot create the service user checkpoint" in said

    port = free_port()
    state = root / "var/lib/checkpoint-edge" / STATION
    written = _write_config(state, port, write_package(tmp_path / "model", "cpe-fcos-v1", 128), STATION)
    config = root / "etc/checkpoint-edge" / f"{STATION}.toml"
    written.rename(config)
    db = state / "data" / "station.db"
    log = tmp_path / "station.log"
    before = _run_station(root, config, port, "0.1.0", db, 0, log)
    with sqlite3.connect(db) as conn:
        schema = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]

    _script(info1, "prerm", root, "upgrade", "0.1.1")  # dpkg's order: old prerm, unpack, new postinst
    info2 = _unpack(deb2, root, tmp_path / "info2")
    said = _script(info2, "postinst", root, "configure", "0.1.0")
    assert f"{STATION}: {db} at schema version {schema + 1}" in said
    assert "edge (checkpoint-edge) 0.1.1" in said
    assert not (app / ".venv.old").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'upgrade_probe'").fetchone()[0] == 1
    after = _run_station(root, config, port, "0.1.1", db, len(before), log)
    assert after[:len(before)] == before  # every inspection of the old release kept, in order


def test_a_package_built_from_another_source_tree_takes_its_maintainer_scripts(tmp_path):
    """`scripts/package --src TAG_CHECKOUT` took the wheel from that tree but control, postinst, prerm and postrm
    from the tree the script ran in: a release's package migrated and restarted as another release's scripts say."""
    src = tmp_path / "src"
    src.mkdir()
    _copy_of_the_repository(src)
    postinst = src / "deploy" / "debian" / "postinst"
    postinst.write_text(postinst.read_text().replace("set -e\n", "set -e\n# the release under test's own postinst\n", 1))
    deb = _built(_build(src, tmp_path / "out", "9.8.7"))
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    assert "# the release under test's own postinst" in (control / "postinst").read_text()
