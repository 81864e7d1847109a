"""Message catalogues: JSON files keyed by message id, one per language, in one folder.

Keys are stable codes (reasons, classes, roles, states are stored as codes and translated only at
display time). A key missing from a non-English catalogue falls back to English; a key missing
from English is a programming error and raises KeyError (each package's catalogue test catches it).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGS: tuple[str, ...] = ("en", "zh-Hant", "zh-Hans")


class Catalogues:
    """The catalogues `<lang>.json` of one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.catalogue = lru_cache(maxsize=None)(self._load)

    def _load(self, lang: str) -> dict[str, str]:
        """The catalogue of one language (English for an unknown language)."""
        name = lang if lang in LANGS else "en"
        return json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))

    def t(self, key: str, lang: str = "en", **values: object) -> str:
        """Translate `key` into `lang`, filling `{name}` placeholders from `values`."""
        text = self.catalogue(lang).get(key) or self.catalogue("en")[key]
        return text.format(**values) if values else text


def pick_lang(requested: str | None, default: str = "en") -> str:
    """The requested language when it is one we have, else the default (English if that is none)."""
    return requested if requested in LANGS else (default if default in LANGS else "en")
