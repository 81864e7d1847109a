import pytest

from edge.store import Store


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "data", station="st-1") as s:
        yield s
