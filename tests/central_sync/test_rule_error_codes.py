"""A rule that does not compile: the control room's check answers the RuleError's English sentence (as station logs and
the CLI keep it) with a stable code and its values, which the page translates (`error.<code>` in every catalogue)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.i18n import LANGS, catalogue
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from risk.errors import RuleError
from risk.rules import compile_rules

PASSWORD = "correct horse"
GOOD = {"id": "R1", "lane": "red", "when": {"listed": "any"}}


@pytest.fixture
async def supervisor(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig()) as room:
        auth.add_user(store, "sam", "supervisor", PASSWORD)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=room.install(create_app(store))),
                                     base_url="https://hub") as client:
            login = await client.post("/cr/api/login", json={"username": "sam", "password": PASSWORD})
            assert login.status_code == 200
            yield client


@pytest.mark.parametrize(("rule", "code", "vals"), [
    (GOOD | {"lane": "purple"}, "bad_lane", {"got": "'purple'"}),
    (GOOD | {"when": {"fact": "history.passes", "op": "gte", "value": "3"}}, "value_not_number",
     {"op": "gte", "fact": "history.passes", "got": "'3'"}),
    (GOOD | {"when": {"fact": "station.id", "op": "like", "value": "x"}}, "unknown_op",
     {"op": "'like'", "fact": "station.id", "ops": "eq, ne, in, prefix, gte, lte, between, present"}),
    (GOOD | {"when": {"fact": "history.passes", "op": "prefix", "value": "1"}}, "not_text_fact",
     {"op": "prefix", "fact": "history.passes"}),
    (GOOD | {"when": {"all": []}}, "empty_group", {"key": "all", "got": "[]"}),
    (GOOD | {"colour": "blue"}, "unknown_fields", {"fields": "colour"}),
    ({"lane": "red", "when": {}}, "no_id", {"rule": "None"}),
])
async def test_the_check_answers_the_code_and_values_of_a_rule_error(
        supervisor: httpx.AsyncClient, rule: dict[str, Any], code: str, vals: dict[str, str]) -> None:
    """Before, the check answered {"ok": false, "error": "rule 'R1': lane must be one of red, amber, green, got
    'purple'"} only, and the page showed that English inside its translated frame."""
    answer = await supervisor.post("/cr/api/risk/rules/check", json={"rule": rule})
    assert answer.status_code == 200
    body = answer.json()
    with pytest.raises(RuleError) as raised:
        compile_rules([rule])
    assert body == {"ok": False, "error": str(raised.value), "code": f"rule.{code}", "vals": {"rule": "R1"} | vals}
    for lang in LANGS:
        sentence = catalogue(lang)[f"error.rule.{code}"]
        assert all("{" + k + "}" in sentence for k in vals if k != "rule"), (lang, sentence)


async def test_a_rule_that_compiles_answers_no_code(supervisor: httpx.AsyncClient) -> None:
    body = (await supervisor.post("/cr/api/risk/rules/check", json={"rule": GOOD})).json()
    assert body == {"ok": True, "error": None, "code": None, "vals": {}}


def test_the_english_sentence_is_kept_and_every_code_is_translated() -> None:
    """Station logs and the CLI read str(RuleError) as before; each code has a sentence in every language."""
    from risk.errors import RULE_CODES
    with pytest.raises(RuleError) as raised:
        compile_rules([GOOD | {"lane": "purple"}])
    assert str(raised.value) == "rule 'R1': lane must be one of red, amber, green, got 'purple'"
    assert (raised.value.code, raised.value.vals) == ("bad_lane", {"rule": "R1", "got": "'purple'"})
    missing = [(lang, code) for lang in LANGS for code in RULE_CODES if not catalogue(lang).get(f"error.rule.{code}")]
    assert missing == []
    with pytest.raises(ValueError, match="unknown rule error code 'typo'"):
        RuleError("R1", "typo", "a sentence")
