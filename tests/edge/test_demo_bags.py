"""The demo's bag stations stream mostly clean bags (5-15 % with a threat), as a real checkpoint sees."""

import tomllib

from edge.demo import bag_pool, write_station_configs
from models.scan import load_scan, load_scans


def test_the_bag_pool_is_mostly_clean_and_every_bag_reads(tmp_path):
    pool = bag_pool(tmp_path / "bags")
    bags = sorted(pool.glob("*.npz"))
    with_threat = [b for b in bags if "clean" not in b.name]
    assert len(bags) == 40 and 0.05 <= len(with_threat) / len(bags) <= 0.15, [b.name for b in bags]
    assert len({b.resolve() for b in with_threat}) > 1  # the threats vary
    assert all(load_scan(b).meta.get("truth") for b in with_threat)
    assert not any(load_scan(b).meta.get("truth") for b in bags if b not in with_threat)
    assert sorted(bag_pool(tmp_path / "bags").glob("*.npz")) == bags  # a second start keeps the pool


def test_the_conveyor_and_the_retrofit_xray_stream_the_pool(tmp_path):
    pool = bag_pool(tmp_path / "bags")
    configs = write_station_configs(tmp_path, 9000, 1883, tmp_path / "vehicles", pool)
    dirs = {}
    for path in configs:
        data = tomllib.loads(path.read_text())
        devices = data["devices"]
        dirs[path.stem] = (devices.get("scanner", {}).get("sim") or devices.get("source", {}).get("sim"))["scan_dir"]
    assert dirs == {"gantry": str(tmp_path / "vehicles"), "conveyor": str(pool), "xray": str(pool)}


def test_the_simulators_read_each_bag_of_the_pool_once(tmp_path):
    bags = sorted(bag_pool(tmp_path / "bags").glob("*.npz"))
    scans = load_scans(bags)
    assert len(scans) == 40 and len({id(s) for s in scans}) == len({b.resolve() for b in bags}) == 8
    assert [s.sha256() for s in scans] == [load_scan(b).sha256() for b in bags]
