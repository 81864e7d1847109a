"""The one i18n fallback rule: requested tag -> its related catalogue -> default -> English; key -> English -> key."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from appliance import i18n


@pytest.mark.parametrize("requested,lang", [
    ("zh-Hant", "zh-Hant"), ("zh-hant", "zh-Hant"), ("zh_Hant", "zh-Hant"), ("zh-Hant-HK", "zh-Hant"),
    ("zh-HK", "zh-Hant"), ("zh-TW", "zh-Hant"), ("zh-MO", "zh-Hant"), ("zh-Hans-HK", "zh-Hans"),
    ("zh-Hans", "zh-Hans"), ("zh-CN", "zh-Hans"), ("zh-SG", "zh-Hans"), ("zh", "zh-Hans"),
    ("en", "en"), ("en-GB", "en"), ("EN-us", "en"),
])
def test_a_tag_resolves_to_its_related_catalogue(requested, lang):
    assert i18n.pick_lang(requested) == lang


@pytest.mark.parametrize("requested", [None, "", "fr", "default", "xx-YY", "*"])
def test_an_unknown_language_gets_the_default_then_english(requested):
    assert i18n.pick_lang(requested, "zh-Hant") == "zh-Hant"
    assert i18n.pick_lang(requested, "zh-HK") == "zh-Hant"
    assert i18n.pick_lang(requested) == "en"
    assert i18n.pick_lang(requested, "fr") == "en"


@pytest.mark.parametrize("header,lang", [
    ("zh-HK,zh;q=0.9,en;q=0.8", "zh-Hant"), ("fr-FR,fr;q=0.9,zh-CN;q=0.8,en;q=0.5", "zh-Hans"),
    ("en;q=0.5, zh-TW;q=0.9", "zh-Hant"), ("fr, de;q=0.5", "en"), ("zh-TW;q=0, en", "en"),
])
def test_an_accept_language_header_is_read_by_preference(header, lang):
    assert i18n.pick_lang(header) == lang


@pytest.fixture
def cats(tmp_path):
    for lang, body in (("en", {"a": "A {n}", "b": "B", "only_en": "E"}), ("zh-Hant", {"a": "甲 {n}", "b": ""}),
                       ("zh-Hans", {"a": "甲 {n}"})):
        (tmp_path / f"{lang}.json").write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    return i18n.Catalogues(tmp_path)


def test_a_key_falls_back_to_english_then_to_the_key_itself(cats):
    assert cats.t("a", "zh-HK", n=3) == "甲 3"
    assert cats.t("b", "zh-Hant") == "B"  # empty counts as missing
    assert cats.t("only_en", "zh-Hans") == "E"
    assert cats.t("no.such", "zh-Hant") == "no.such"
    assert cats.t("a", "fr", n=1) == "A 1"


def test_each_missing_key_is_logged_once_and_counted(cats):
    with capture_logs() as logs:
        for _ in range(3):
            cats.t("only_en", "zh-Hant")
            cats.t("no.such", "en")
    events = [(e["event"], e["lang"], e["key"], e["served"]) for e in logs]
    assert events == [("i18n.missing_key", "zh-Hant", "only_en", "en"), ("i18n.missing_key", "en", "no.such", "key")]
    assert cats.missing == {("zh-Hant", "only_en"): 3, ("en", "no.such"): 3}


def test_messages_are_the_whole_english_catalogue_overlaid_by_the_language(cats):
    assert cats.messages("zh-TW") == {"a": "甲 {n}", "b": "B", "only_en": "E"}
    assert cats.messages("fr") == cats.catalogue("en")
