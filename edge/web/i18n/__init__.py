"""The station screen's message catalogues (this folder); every user-facing string comes from `t(key, lang)`."""

from __future__ import annotations

from pathlib import Path

from appliance.i18n import LANGS, Catalogues, pick_lang

_CATALOGUES = Catalogues(Path(__file__).parent)
catalogue, t = _CATALOGUES.catalogue, _CATALOGUES.t

__all__ = ["LANGS", "catalogue", "pick_lang", "t"]
