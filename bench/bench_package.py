"""Release package bench: builds the real package (every dependency's wheel) with scripts/package,
installs it into an empty root the way dpkg --root runs the maintainer scripts (postinst builds the
venv offline from the package's wheels), and prints the build time, the .deb's size, the install
time and the venv's size; writes bench/results/package.json. Never asserts.

Run:  .venv/bin/python bench/bench_package.py [--python /usr/bin/python3]

Needs dpkg-deb and the package index (or pip's cache) for the dependency wheels. The test
(tests/test_release_package.py) builds without dependency wheels to stay fast; this is the real thing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _size_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    return round(total / 1e6, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=os.path.realpath(sys.executable),
                    help="the interpreter postinst makes the venv from (the stations' python3)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.monotonic()
        built = subprocess.run([str(ROOT / "scripts" / "package"), "--out", str(work / "dist")], check=True,
                               capture_output=True, text=True).stdout.split()
        build_s = time.monotonic() - start
        deb = Path(built[-1])
        root, info = work / "root", work / "info"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        subprocess.run(["dpkg-deb", "-e", str(deb), str(info)], check=True)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        start = time.monotonic()
        subprocess.run([str(info / "postinst"), "configure"], check=True, capture_output=True,
                       env={**env, "DPKG_ROOT": str(root), "CHECKPOINT_EDGE_PYTHON": args.python})
        install_s = time.monotonic() - start
        venv = root / "opt" / "checkpoint-edge" / ".venv"
        version = subprocess.run([str(venv / "bin" / "edge"), "--version"], capture_output=True, text=True, env=env,
                                 check=True).stdout.strip()
        wheels = len(list((root / "opt" / "checkpoint-edge" / "wheels").glob("*.whl")))
        result = {"version": version, "deb": deb.name, "deb_mb": _size_mb(deb), "wheels": wheels,
                  "build_s": round(build_s, 1), "install_s": round(install_s, 1), "venv_mb": _size_mb(venv),
                  "machine": platform.machine(), "cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 1)}
    for key, value in result.items():
        print(f"{key:>10}: {value}")
    out = ROOT / "bench" / "results" / "package.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
