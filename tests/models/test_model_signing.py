"""Signed model packages: a package is accepted only with a pinned key, a good signature and the signed hashes;
every refusal is one sentence with the values and happens before onnxruntime sees a byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from models.errors import PackageError
from models.signing import SIGNATURE_FILE, is_downgrade, open_folder, open_package, pack, sign_package
from models.testgraphs import write_package

KEY = Ed25519PrivateKey.generate()
PINNED = {"models-2026": KEY.public_key()}


@pytest.fixture
def package(tmp_path: Path) -> Path:
    root = write_package(tmp_path / "pkg", version="1.1.0")
    (root / "MODEL.md").write_text("# test model\n")
    return root


def refused(data: bytes) -> PackageError:
    with pytest.raises(PackageError) as info:
        open_package(data, PINNED)
    assert "\n" not in str(info.value)
    return info.value


def test_a_signed_package_opens_with_its_files_and_statement(package: Path) -> None:
    sign_package(package, KEY, "models-2026", signer="admin-chan")
    opened = open_package(pack(package), PINNED)
    assert opened.manifest.version == "1.1.0" and opened.key_id == "models-2026"
    assert opened.files["model.onnx"] == (package / "model.onnx").read_bytes()
    assert opened.files["MODEL.md"] == b"# test model\n"
    assert opened.statement["signer"] == "admin-chan" and not opened.allow_downgrade


def test_an_unsigned_package_is_refused(package: Path) -> None:
    assert refused(pack(package)).code == "unsigned"


def test_a_key_the_station_does_not_pin_is_refused(package: Path) -> None:
    sign_package(package, Ed25519PrivateKey.generate(), "someone-else")
    err = refused(pack(package))
    assert err.code == "unknown_key" and "'someone-else'" in str(err) and "models-2026" in str(err)


def test_a_signature_by_another_key_under_a_pinned_id_is_refused(package: Path) -> None:
    sign_package(package, Ed25519PrivateKey.generate(), "models-2026")
    assert refused(pack(package)).code == "bad_signature"


def test_a_statement_changed_after_signing_is_refused(package: Path) -> None:
    sign_package(package, KEY, "models-2026")
    doc = json.loads((package / SIGNATURE_FILE).read_text())
    doc["statement"]["allow_downgrade"] = True
    (package / SIGNATURE_FILE).write_text(json.dumps(doc))
    assert refused(pack(package)).code == "bad_signature"


@pytest.mark.parametrize("file", ["model.onnx", "manifest.toml", "MODEL.md"])
def test_a_file_changed_after_signing_is_refused(package: Path, file: str) -> None:
    sign_package(package, KEY, "models-2026")
    path = package / file
    path.write_bytes(path.read_bytes() + b"\n# changed\n")
    err = refused(pack(package))
    assert err.code == "sha_mismatch" and file in str(err)


def test_a_model_that_does_not_match_its_manifest_is_not_signed(package: Path) -> None:
    (package / "model.onnx").write_bytes(b"not the model")
    with pytest.raises(PackageError, match="not signed") as info:
        sign_package(package, KEY, "models-2026")
    assert info.value.code == "sha_mismatch" and not (package / SIGNATURE_FILE).exists()


@pytest.mark.parametrize("data", [b"", b"CPEMP1\n", b"CPEMP1\n{not json\n", b"garbage" * 100,
                                  b'CPEMP1\n{"key_id":"models-2026","sig":"AAAA","statement":{}}\n'])
def test_garbage_is_refused_in_one_sentence(data: bytes) -> None:
    assert refused(data).code in {"bad_format", "unsigned", "bad_signature"}


def test_a_truncated_envelope_is_refused(package: Path) -> None:
    sign_package(package, KEY, "models-2026")
    assert refused(pack(package)[:-10]).code == "bad_format"


def test_versions_compare_number_by_number(tmp_path: Path) -> None:
    assert is_downgrade("2.9.1", "2.10.0") and not is_downgrade("2.10.0", "2.9.1")
    assert not is_downgrade("2.0.0", "2.0.0") and not is_downgrade("1.0.0", None)


def test_signing_leaves_the_package_files_untouched(package: Path, tmp_path: Path) -> None:
    before = shutil.copytree(package, tmp_path / "before")
    sign_package(package, KEY, "models-2026")
    for file in ("model.onnx", "manifest.toml", "MODEL.md"):
        assert (package / file).read_bytes() == (before / file).read_bytes()


def test_an_installed_package_is_verified_again_from_its_folder(package: Path, tmp_path: Path) -> None:
    """What a station writes into a slot carries its signature.json; read back, the folder is verified as the
    envelope was, and any file changed since, or the signature gone or spoilt, is refused with the same codes."""
    sign_package(package, KEY, "models-2026")
    opened = open_package(pack(package), PINNED)
    slot = tmp_path / "slot"
    slot.mkdir()
    opened.write(slot)
    assert open_folder(slot, PINNED).identity == opened.identity
    manifest = (slot / "manifest.toml").read_bytes()
    (slot / "manifest.toml").write_bytes(manifest.replace(b"threshold = 0.5", b"threshold = 1.0"))
    with pytest.raises(PackageError) as info:
        open_folder(slot, PINNED)
    assert info.value.code == "sha_mismatch" and "\n" not in str(info.value)
    (slot / "manifest.toml").write_bytes(manifest)
    for spoilt, code in ((b"[1, 2]", "bad_format"), (b"{not json", "bad_format"), (None, "unsigned")):
        if spoilt is None:
            (slot / SIGNATURE_FILE).unlink()
        else:
            (slot / SIGNATURE_FILE).write_bytes(spoilt)
        with pytest.raises(PackageError) as info:
            open_folder(slot, PINNED)
        assert info.value.code == code and "\n" not in str(info.value)
