"""The station screen's message catalogues (this folder); every user-facing string comes from `t(key, lang)`."""

from __future__ import annotations

from pathlib import Path

from appliance.i18n import LANGS, Catalogues, pick_lang

_CATALOGUES = Catalogues(Path(__file__).parent)
catalogue, page_messages, t = _CATALOGUES.catalogue, _CATALOGUES.messages, _CATALOGUES.t

__all__ = ["LANGS", "catalogue", "page_messages", "pick_lang", "t"]
