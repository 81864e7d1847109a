"""Message catalogues of the diagnostics: `<lang>.json`, keys used by code, read by `appliance.i18n`'s one rule."""

from __future__ import annotations

import string
from pathlib import Path

from appliance.i18n import FALLBACK, Catalogues, pick_lang

HERE = Path(__file__).parent
_CATALOGUES = Catalogues(HERE)


def languages() -> list[str]:
    """Languages with a catalogue."""
    return sorted(p.stem for p in HERE.glob("*.json"))


def placeholders(text: str) -> set[str]:
    """The {names} a message uses (translations must use the same)."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


class Catalogue:
    """Messages of the language `lang` resolves to; a missing key falls back to English, then to the key itself."""

    def __init__(self, lang: str = FALLBACK) -> None:
        self.lang = pick_lang(lang)

    def text(self, key: str, **fields: object) -> str:
        """The message for `key` with its {placeholders} filled (missing ones left visible)."""
        template = _CATALOGUES.lookup(key, self.lang)
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
