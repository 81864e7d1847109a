"""Signed command wire format: sign/verify round trip, tampering and foreign keys refused."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, strategies as st

from central_sync import commands as c


@pytest.fixture(scope="module")
def key():
    return Ed25519PrivateKey.generate()


def test_round_trip(key):
    cmd = c.new_command("gate-1", "set_thresholds", {"thresholds": {"knife": 0.4}}, issuer="sup1")
    got = c.verify(key.public_key(), c.sign(key, cmd))
    assert got == cmd and got.args == {"thresholds": {"knife": 0.4}}


def test_tampered_payload_is_refused(key):
    env = json.loads(c.sign(key, c.new_command("gate-1", "set_tip_rate", {"rate": 0.01}, issuer="sup1")))
    env["payload"] = env["payload"].replace("0.01", "0.9")
    with pytest.raises(c.CommandSignatureError, match="does not verify"):
        c.verify(key.public_key(), json.dumps(env).encode())


def test_other_key_is_refused(key):
    data = c.sign(Ed25519PrivateKey.generate(), c.new_command("gate-1", "request_diag", {}, issuer="x"))
    with pytest.raises(c.CommandSignatureError):
        c.verify(key.public_key(), data)


@pytest.mark.parametrize("op,args", [("set_tip_rate", {"rate": 1.5}), ("switch_model", {"sha256": "abc"}),
                                     ("set_thresholds", {"thresholds": {}}), ("request_diag", {"plan": "all"}),
                                     ("set_thresholds", {"thresholds": {"knife": True}}),  # was read as 1.0
                                     ("set_tip_rate", {"rate": True}),
                                     ("set_thresholds", {"thresholds": {"knife": 1.0}}),  # detection off
                                     ("set_thresholds", {"thresholds": {"knife": 0.0}})])
def test_bad_arguments_are_refused_when_built(op, args):
    with pytest.raises(c.CommandFormatError, match=op):
        c.new_command("gate-1", op, args, issuer="x")


def test_keys_round_trip_through_files(tmp_path):
    priv = c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    cmd = c.new_command("gate-1", "request_diag", {"plan": "full"}, issuer="x")
    assert c.verify(c.load_public_key(tmp_path / "hub.pub"), c.sign(c.load_private_key(tmp_path / "hub.key"), cmd)) == cmd
    assert priv.public_key() == c.load_public_key(tmp_path / "hub.pub")
    with pytest.raises(c.CommandError, match="hub.pub"):
        c.load_private_key(tmp_path / "hub.pub")


@given(st.binary(max_size=400))
def test_garbage_never_verifies(data):
    key = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    with pytest.raises(c.CommandError):
        c.verify(key.public_key(), data)
    assert set(c.peek(data)) == {"id", "station", "op"}
