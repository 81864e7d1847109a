"""Message catalogues of the diagnostics: `<lang>.json`, keys used by code, English as fallback."""

from __future__ import annotations

import json
import string
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).parent
FALLBACK = "en"


@lru_cache(maxsize=8)
def _load(lang: str) -> dict[str, str]:
    path = HERE / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def languages() -> list[str]:
    """Languages with a catalogue."""
    return sorted(p.stem for p in HERE.glob("*.json"))


def placeholders(text: str) -> set[str]:
    """The {names} a message uses (translations must use the same)."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


class Catalogue:
    """Messages of one language; a missing key falls back to English, then to the key itself."""

    def __init__(self, lang: str = FALLBACK) -> None:
        self.lang = lang
        self._own = _load(lang)
        self._en = _load(FALLBACK)

    def text(self, key: str, **fields: object) -> str:
        """The message for `key` with its {placeholders} filled (missing ones left visible)."""
        template = self._own.get(key) or self._en.get(key) or key
        return template.format_map(_Keep({k: _fmt(v) for k, v in fields.items()}))


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fmt(v: object) -> str:
    if isinstance(v, bool) or v is None:
        return {True: "yes", False: "no", None: "-"}[v]
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.0f}"
    return str(v)
