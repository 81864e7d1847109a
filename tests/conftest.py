"""Shared test helpers live beside this file (polling.py): a conftest in a directory without
__init__.py puts that directory on sys.path, so every test imports them as `from polling import until`."""
