"""vbdt pki init / pki add / sign / verify / pdf sign / pdf verify: exit codes and one-line reasons."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import INTEROP
from vbdt.cli.main import main
from vbdt.trust.keys import SigningKey
from vbdt.trust.samplepdf import make_pdf
from vbdt.trust.xmldsig import sign

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
    # signed by another agency's key: a valid signature, but not the sender's (`vbdt sign` refuses
    # to make such a file, so the library signs it)
    wrong.write_bytes(sign(edxml.read_bytes(), SigningKey.from_pem(pki / "000.00.00.H54.key.pem", pki / "000.00.00.H54.cert.pem")))
    code, _, err = run("sign", str(edxml), "-o", str(tmp_path / "refused.edxml"), "--key", str(pki / "000.00.00.H54.key.pem"),
                       "--cert", str(pki / "000.00.00.H54.cert.pem"))
    assert code == 1 and err.count("\n") == 1 and not (tmp_path / "refused.edxml").exists()
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


def test_pki_keys_are_private(pki: Path) -> None:
    keys = sorted(pki.glob("*.key.pem"))
    assert {k.name for k in keys} >= {"intermediate.key.pem", "signer.key.pem", f"{H14}.key.pem"}
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys), [oct(k.stat().st_mode) for k in keys]
    assert stat.S_IMODE((pki / "ca.pem").stat().st_mode) & 0o044  # certificates stay readable
    assert not list(pki.glob(".*.tmp"))


def test_pki_init_refuses_to_replace_a_ca_without_force(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    assert run("pki", "init", str(folder), "--select", H14)[0] == 0
    anchor = (folder / "ca.pem").read_bytes()
    code, _, err = run("pki", "init", str(folder), "--select", H14)
    assert code == 1 and err.count("\n") == 1 and "already holds a test CA" in err and "--force" in err, err
    assert (folder / "ca.pem").read_bytes() == anchor
    code, _, err = run("pki", "init", str(folder), "--select", H14, "--force")
    assert code == 0, err
    assert (folder / "ca.pem").read_bytes() != anchor
    assert stat.S_IMODE((folder / f"{H14}.key.pem").stat().st_mode) == 0o600


def test_pki_add_certifies_an_agency_that_signs_and_verifies(edxml: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    assert run("pki", "init", str(folder), "--select", "000.00.00.H54")[0] == 0
    assert not (folder / f"{H14}.key.pem").exists()
    code, out, err = run("pki", "add", str(folder), H14)
    assert code == 0 and H14 in out, err
    key, cert = folder / f"{H14}.key.pem", folder / f"{H14}.cert.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    signed = tmp_path / "signed.edxml"
    code, _, err = run("sign", str(edxml), "-o", str(signed), "--key", str(key), "--cert", str(cert))
    assert code == 0, err
    code, text, err = run("verify", str(signed), "--trust", str(folder / "ca.pem"))
    assert code == 0 and f"valid signature of {H14}" in text and "bound by uid" in text, err
    # again: refused without --force, replaced with it
    code, _, err = run("pki", "add", str(folder), H14)
    assert code == 1 and err.count("\n") == 1 and "--force" in err, err
    before = key.read_bytes()
    assert run("pki", "add", str(folder), H14, "--force")[0] == 0
    assert key.read_bytes() != before


@pytest.mark.parametrize("case", ["no CA", "no folder", "unknown agency", "no ID"])
def test_pki_add_failures_are_one_line(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "ca"
    folder.mkdir()
    if case == "unknown agency":
        assert run("pki", "init", str(folder), "--select", H14)[0] == 0
    args = {"no CA": [str(folder), H14], "no folder": [str(tmp_path / "missing"), H14],
            "unknown agency": [str(folder), "000.00.00.Z99"], "no ID": [str(folder)]}[case]
    code, _, err = run("pki", "add", *args)
    assert code in (1, 2) and err.count("\n") == 1 and "Traceback" not in err, err
    if case == "no CA":
        assert code == 2 and "vbdt pki init" in err


def test_pdf_sign_with_a_seal_image(pki: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((4, 4, 116, 116), outline=(200, 0, 0, 255), width=8)
    png = tmp_path / "seal.png"
    image.save(png)
    src = tmp_path / "in.pdf"
    src.write_bytes(make_pdf(["CONG VAN"]))
    out = tmp_path / "out.pdf"
    keys = ["--signer-key", str(pki / "signer.key.pem"), "--signer-cert", str(pki / "signer.cert.pem"),
            "--seal-key", str(pki / f"{H14}.key.pem"), "--seal-cert", str(pki / f"{H14}.cert.pem")]
    code, _, err = run("pdf", "sign", str(src), "-o", str(out), *keys, "--seal-image", str(png),
                       "--agency-name", "Ủy ban nhân dân tỉnh Cao Bằng")
    assert code == 0, err
    assert b"/Subtype /Image" in out.read_bytes() or b"/Subtype/Image" in out.read_bytes()
    code, text, _ = run("pdf", "verify", str(out), "--trust", str(pki / "ca.pem"))
    assert code == 0 and text.rstrip().endswith("original-valid")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not a png")
    code, _, err = run("pdf", "sign", str(src), "-o", str(tmp_path / "x.pdf"), *keys, "--seal-image", str(garbage))
    assert code == 1 and err.startswith("vbdt: the seal image cannot be read") and err.count("\n") == 1, err
    code, _, err = run("pdf", "sign", str(src), "-o", str(tmp_path / "x.pdf"), *keys[:4], "--seal-image", str(png))
    assert code == 2 and "needs the seal" in err
