"""Message catalogues and the one fallback rule used by the station screen, the control room and diagnostics.

Catalogues are JSON files `<lang>.json` keyed by message id, one per language, in one folder. Keys
are stable codes (reasons, classes, roles, states are stored as codes and translated only at
display time). The rule, in one place:

    language   the requested tag (or, from an Accept-Language value, the most preferred tag that
               resolves) -> the catalogue of that tag or of its related variant (zh-HK, zh-TW,
               zh-MO, zh-Hant-* -> zh-Hant; zh, zh-CN, zh-SG, zh-Hans-* -> zh-Hans; en-* -> en)
               -> the configured default, resolved the same way -> English
    key        that language's text -> English -> the key itself; each (language, key) that
               falls back is logged once as `i18n.missing_key` and counted in `missing`.

Each package's catalogue test checks that every key the code uses is in every catalogue.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import structlog

log = structlog.get_logger()

LANGS: tuple[str, ...] = ("en", "zh-Hant", "zh-Hans")
FALLBACK = "en"
TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})


def related(tag: str) -> str | None:
    """The catalogue language serving one BCP 47 tag (any case, '-' or '_'), or None when none does."""
    parts = tag.strip().replace("_", "-").lower().split("-")
    exact = {lang.lower(): lang for lang in LANGS}.get("-".join(parts))
    if exact or not parts[0]:
        return exact
    if parts[0] == "zh":
        if "hant" in parts[1:] or ("hans" not in parts[1:] and TRADITIONAL_REGIONS & set(parts[1:])):
            return "zh-Hant"
        return "zh-Hans"
    return parts[0] if parts[0] in LANGS else None


def preferences(requested: str) -> list[str]:
    """The tags of a single tag or an Accept-Language value, most preferred first (q=0 dropped)."""
    weighted = []
    for position, item in enumerate(requested.split(",")):
        tag, _, params = item.partition(";")
        q = _quality(params)
        if tag.strip() and q > 0:
            weighted.append((-q, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def pick_lang(requested: str | None, default: str = FALLBACK) -> str:
    """The catalogue language for a requested tag or Accept-Language value, by the rule above."""
    for tag in [*preferences(requested or ""), default]:
        lang = related(tag)
        if lang:
            return lang
    return FALLBACK


class Catalogues:
    """The catalogues `<lang>.json` of one folder, read through the one rule."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._file = lru_cache(maxsize=len(LANGS))(self._load)
        self.missing: Counter[tuple[str, str]] = Counter()

    def _load(self, lang: str) -> dict[str, str]:
        path = self.folder / f"{lang}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def catalogue(self, lang: str) -> dict[str, str]:
        """The catalogue file of the language `lang` resolves to ({} when that file is absent)."""
        return self._file(pick_lang(lang))

    def lookup(self, key: str, lang: str = FALLBACK) -> str:
        """The text of `key` in `lang`, else in English, else the key itself (logged once per language and key)."""
        lang = pick_lang(lang)
        text = self.catalogue(lang).get(key)
        if text:
            return text
        text = self.catalogue(FALLBACK).get(key) if lang != FALLBACK else None
        self._missed(lang, key, "en" if text else "key")
        return text or key

    def _missed(self, lang: str, key: str, served: str) -> None:
        self.missing[(lang, key)] += 1
        if self.missing[(lang, key)] == 1:
            log.warning("i18n.missing_key", lang=lang, key=key, served=served, folder=self.folder.name)

    def t(self, key: str, lang: str = FALLBACK, **values: object) -> str:
        """Translate `key` into `lang`, filling `{name}` placeholders from `values`."""
        text = self.lookup(key, lang)
        return text.format(**values) if values else text

    def messages(self, lang: str) -> dict[str, str]:
        """Every message for a page in `lang`: the English catalogue overlaid by that language's texts."""
        own = {k: v for k, v in self.catalogue(pick_lang(lang)).items() if v}
        return {**self.catalogue(FALLBACK), **own}
