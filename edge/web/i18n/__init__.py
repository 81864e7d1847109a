"""Message catalogues: every user-facing string comes from `t(key, lang)` over JSON catalogues here.

Keys are stable codes (reason codes and class names are stored as codes in records and translated
only at display time). A missing key in a non-English catalogue falls back to English; a key
missing from English is a programming error and raises KeyError (the catalogue test catches it).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGS: tuple[str, ...] = ("en", "zh-Hant", "zh-Hans")
_DIR = Path(__file__).parent


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """The catalogue of one language (English for an unknown language)."""
    name = lang if lang in LANGS else "en"
    return json.loads((_DIR / f"{name}.json").read_text(encoding="utf-8"))


def t(key: str, lang: str = "en", **values: object) -> str:
    """Translate `key` into `lang`, filling `{name}` placeholders from `values`."""
    text = catalogue(lang).get(key) or catalogue("en")[key]
    return text.format(**values) if values else text


def pick_lang(requested: str | None, default: str = "en") -> str:
    """The requested language when it is one we have, else the station default."""
    return requested if requested in LANGS else default
