"""Shared test helpers live beside this file (polling.py): a conftest in a directory without
__init__.py puts that directory on sys.path, so every test imports them as `from polling import until`."""

from hypothesis import settings

# Property tests judge properties, not this machine's speed: no per-example deadline (a loaded
# machine made a fusion property "fail" on hypothesis' default 200 ms).
settings.register_profile("cpe", deadline=None)
settings.load_profile("cpe")
