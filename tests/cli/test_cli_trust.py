"""vbdt pki init / sign / verify / pdf sign / pdf verify: exit codes and one-line reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import INTEROP
from vbdt.cli import main
from vbdt.samplepdf import make_pdf

H14 = "000.00.00.H14"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    code, out, err = run("pki", "init", str(folder), "--select", f"{H14}", "--select", "000.00.00.H54")
    assert code == 0, err
    assert "TEST PKI for 2 agencies" in out
    return folder


@pytest.fixture(scope="module")
def edxml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    assert run("demo", "--quick", "--out", str(folder))[0] == 0
    return folder / "directive.edxml"


def test_pki_init_writes_the_documented_files(pki: Path) -> None:
    names = {p.name for p in pki.iterdir()}
    assert {"ca.pem", f"{H14}.key.pem", f"{H14}.cert.pem", "signer.key.pem", "signer.cert.pem"} <= names


def test_sign_then_verify(pki: Path, edxml: Path, tmp_path: Path) -> None:
    out = tmp_path / "signed.edxml"
    code, _, err = run("sign", str(edxml), "-o", str(out), "--key", str(pki / f"{H14}.key.pem"), "--cert", str(pki / f"{H14}.cert.pem"))
    assert code == 0, err
    code, text, _ = run("verify", str(out), "--trust", str(pki / "ca.pem"))
    assert code == 0 and f"valid signature of {H14}" in text and "NOT original-valid: the PDF is not signed" in text
    code, text, _ = run("verify", str(out), "--trust", str(pki / "ca.pem"), "--json")
    assert code == 0 and json.loads(text)["binding"] == "uid"
    code, _, err = run("verify", str(out), "--trust", str(pki / "ca.pem"), "--pdf", "require")
    assert code == 1 and err.startswith("vbdt: attachment") and err.count("\n") == 1


def test_verify_rejections_are_one_line(pki: Path, edxml: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.edxml"
    # signed by another agency's key: a valid signature, but not the sender's
    assert run("sign", str(edxml), "-o", str(wrong), "--key", str(pki / "000.00.00.H54.key.pem"),
               "--cert", str(pki / "000.00.00.H54.cert.pem"))[0] == 0
    code, _, err = run("verify", str(wrong), "--trust", str(pki / "ca.pem"))
    assert code == 1 and "but the package is from 000.00.00.H14" in err and err.count("\n") == 1
    code, _, err = run("verify", str(edxml), "--trust", str(pki / "ca.pem"))
    assert code == 1 and "not signed" in err
    code, _, err = run("verify", str(INTEROP / "new-document-small.edxml"), "--trust", str(pki / "ca.pem"))
    assert code == 1 and "outside the XML-DSig namespace" in err
    garbage = tmp_path / "garbage.edxml"
    garbage.write_bytes(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")
    code, _, err = run("verify", str(garbage), "--trust", str(pki / "ca.pem"))
    assert code == 2 and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["sign", "missing.edxml", "-o", "x", "--key", "k.pem", "--cert", "c.pem"],
        ["sign", "{edxml}", "-o", "{tmp}/x", "--key", "{pki}/ca.pem", "--cert", "{pki}/ca.pem"],
        ["sign", "{edxml}", "-o", "{tmp}/x", "--key", "{pki}/000.00.00.H14.key.pem"],
        ["verify", "{edxml}", "--trust", "{pki}/missing.pem"],
        ["pdf", "sign", "{edxml}", "-o", "{tmp}/x.pdf", "--seal-key", "{pki}/000.00.00.H14.key.pem", "--seal-cert", "{pki}/000.00.00.H14.cert.pem"],
        ["pdf", "sign", "x.pdf", "-o", "y.pdf"],
        ["pdf", "verify", "{edxml}", "--trust", "{pki}/ca.pem"],
    ],
)
def test_bad_arguments_and_files_are_one_line_errors(pki: Path, edxml: Path, tmp_path: Path, args: list[str]) -> None:
    filled = [a.format(pki=pki, edxml=edxml, tmp=tmp_path) for a in args]
    code, _, err = run(*filled)
    assert code in (1, 2) and err.startswith("vbdt: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_pdf_sign_and_verify(pki: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.pdf"
    src.write_bytes(make_pdf(["CONG VAN"]))
    out = tmp_path / "out.pdf"
    code, _, err = run("pdf", "sign", str(src), "-o", str(out), "--signer-key", str(pki / "signer.key.pem"),
                       "--signer-cert", str(pki / "signer.cert.pem"), "--seal-key", str(pki / f"{H14}.key.pem"),
                       "--seal-cert", str(pki / f"{H14}.cert.pem"), "--visible")
    assert code == 0, err
    code, text, _ = run("pdf", "verify", str(out), "--trust", str(pki / "ca.pem"))
    assert code == 0 and text.rstrip().endswith("original-valid") and "person CN=Nguyen Van A" in text
    code, text, _ = run("pdf", "verify", str(src), "--trust", str(pki / "ca.pem"), "--json")
    assert code == 1 and json.loads(text)["reasons"] == ["the PDF is not signed"]
