"""Message catalogues of the control room: JSON keyed by message id, one file per language.

Verdicts, reasons, class names, roles, states and command outcomes are stored as codes and
translated here (or in the page, from the same catalogue) only when shown. A key missing from a
non-English catalogue falls back to English; a key missing from English raises KeyError.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

LANGS: tuple[str, ...] = ("en", "zh-Hant", "zh-Hans")
_DIR = Path(__file__).parent


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    name = lang if lang in LANGS else "en"
    return json.loads((_DIR / f"{name}.json").read_text(encoding="utf-8"))


def t(key: str, lang: str = "en", **values: object) -> str:
    text = catalogue(lang).get(key) or catalogue("en")[key]
    return text.format(**values) if values else text


def pick_lang(requested: str | None, default: str = "en") -> str:
    return requested if requested in LANGS else (default if default in LANGS else "en")
