"""Pre-flight of vbdt send, sign and pdf sign: what receivers would refuse is refused before anything
is signed or published, with one line on stderr and the documented exit code.

``send`` is pointed at a port where no broker listens: a file that passes the pre-flight then fails
with 69 (broker unavailable), so 69 is the proof that the checks let it through, and 1 or 2 that they
stopped it before any connection."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from vbdt.cli.main import main
from vbdt.edxml.model import Attachment, Document, Organization
from vbdt.edxml.validation import read
from vbdt.edxml.writer import write
from vbdt.trust.keys import SigningKey
from vbdt.trust.pades import is_signed_pdf, sign_pdf, verify_pdf
from vbdt.trust.pki import issue_certificate, load_issuer
from vbdt.trust.xmldsig import sign

H14, C1 = "000.00.00.H14", "000.00.01.H14"
NO_BROKER = "amqp://guest:guest@127.0.0.1:1/"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def refused(result: tuple[int, str, str], expected: int, words: str) -> None:
    code, _, err = result
    assert code == expected, err
    assert err.startswith("vbdt: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert words in err, err


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("preflight")
    keys = tmp / "keys"
    assert run("pki", "init", str(keys), "--select", H14, "--select", C1)[0] == 0
    assert run("demo", "--quick", "--out", str(tmp / "demo"))[0] == 0
    return tmp, keys


def key(keys: Path, stem: str) -> SigningKey:
    return SigningKey.from_pem(keys / f"{stem}.key.pem", keys / f"{stem}.cert.pem")


def keys_variant(keys: Path, to: Path, *, key_of: str = H14, cert_of: str = H14, cert: bytes | None = None,
                 signer: bool = True) -> Path:
    """A copy of the keys folder whose H14 key/certificate are replaced (or the person's removed)."""
    shutil.copytree(keys, to)
    shutil.copy(keys / f"{key_of}.key.pem", to / f"{H14}.key.pem")
    if cert is not None:
        (to / f"{H14}.cert.pem").write_bytes(cert)
    else:
        shutil.copy(keys / f"{cert_of}.cert.pem", to / f"{H14}.cert.pem")
    if not signer:
        (to / "signer.key.pem").unlink()
        (to / "signer.cert.pem").unlink()
    return to


def send(file: Path, keys: Path, tmp: Path, *extra: str) -> tuple[int, str, str]:
    return run("send", str(file), "--as", H14, "--to", C1, "--keys", str(keys), "--amqp", NO_BROKER,
               "--ledger", str(tmp / f"ledger-{file.stem}-{keys.name}.db"), *extra)


def directive(tmp: Path) -> Document:
    document = read((tmp / "demo" / "directive.edxml").read_bytes())
    assert isinstance(document, Document)
    return document


def with_pdf(document: Document, pdf: bytes) -> Document:
    (old,) = document.attachments
    return document.model_copy(update={"attachments": [Attachment.from_bytes(old.name, pdf, content_id=old.content_id)]})


def test_a_good_file_passes_and_reaches_the_broker_step(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    code, _, err = send(tmp / "demo" / "directive.edxml", keys, tmp)
    assert code == 69 and "127.0.0.1" in err, err  # checked, then no broker: nothing published anywhere
    signed = tmp / "signed.edxml"
    signed.write_bytes(sign((tmp / "demo" / "directive.edxml").read_bytes(), key(keys, H14)))
    assert send(signed, keys, tmp)[0] == 69  # signed by the sender itself, and intact: fine to send


def test_a_tampered_signed_file_is_refused_not_signed_again(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    signed = sign((tmp / "demo" / "directive.edxml").read_bytes(), key(keys, H14))
    original, changed = "UBND Phường Thục Phán".encode(), "UBND Phường Thục Phan".encode()
    assert original in signed
    tampered = tmp / "tampered-signed.edxml"
    tampered.write_bytes(signed.replace(original, changed, 1))
    code, _, err = send(tampered, keys, tmp)
    refused((code, "", err), 1, "does not verify")
    # --force does not launder it either
    refused(send(tampered, keys, tmp, "--force"), 1, "does not verify")
    code, _, err = run("sign", str(tampered), "-o", str(tmp / "out.edxml"), "--key", str(keys / f"{H14}.key.pem"),
                       "--cert", str(keys / f"{H14}.cert.pem"), "--trust", str(keys / "ca.pem"))
    refused((code, "", err), 1, "does not verify")
    assert not (tmp / "out.edxml").exists()
    code, _, err = run("sign", str(tampered), "-o", str(tmp / "out.edxml"), "--key", str(keys / f"{H14}.key.pem"),
                       "--cert", str(keys / f"{H14}.cert.pem"))
    refused((code, "", err), 2, "--trust")


def test_a_file_signed_by_another_agency_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    foreign = tmp / "foreign.edxml"
    foreign.write_bytes(sign((tmp / "demo" / "directive.edxml").read_bytes(), key(keys, C1)))
    code, _, err = send(foreign, keys, tmp)
    refused((code, "", err), 1, C1)


def test_an_expired_certificate_is_refused(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    expired = issue_certificate(load_issuer(keys), "UBND Tỉnh Cao Bằng", organ_id=H14,
                                not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=30), days=10)
    folder = keys_variant(keys, tmp_path / "expired", cert=expired.certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{H14}.key.pem").write_bytes(expired.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    code, _, err = send(tmp / "demo" / "directive.edxml", folder, tmp)
    refused((code, "", err), 1, "not valid now")
    (attachment,) = directive(tmp).attachments
    (tmp_path / "plain.pdf").write_bytes(attachment.read())
    code, _, err = run("pdf", "sign", str(tmp_path / "plain.pdf"), "-o", str(tmp_path / "o.pdf"),
                       "--seal-key", str(folder / f"{H14}.key.pem"), "--seal-cert", str(folder / f"{H14}.cert.pem"))
    refused((code, "", err), 1, "not valid now")
    assert not (tmp_path / "o.pdf").exists()


def test_a_foreign_certificate_and_a_mismatched_key_are_refused(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    foreign = keys_variant(keys, tmp_path / "foreign", key_of=C1, cert_of=C1)  # C1's pair, used as H14's
    refused(send(tmp / "demo" / "directive.edxml", foreign, tmp), 1, f"belongs to {C1}")
    mismatched = keys_variant(keys, tmp_path / "mismatched", key_of=C1)  # H14's certificate, C1's key
    refused(send(tmp / "demo" / "directive.edxml", mismatched, tmp), 2, "does not match")
    code, _, err = run("sign", str(tmp / "demo" / "directive.edxml"), "-o", str(tmp_path / "o.edxml"),
                       "--key", str(keys / f"{C1}.key.pem"), "--cert", str(keys / f"{C1}.cert.pem"),
                       "--trust", str(keys / "ca.pem"))
    refused((code, "", err), 1, f"belongs to {C1}")


def test_a_pdf_with_a_broken_signature_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    document = directive(tmp)
    (attachment,) = document.attachments
    pdf = sign_pdf(attachment.read(), person=key(keys, "signer"), seal=key(keys, H14))
    assert verify_pdf(pdf, trust=keys / "ca.pem", agency=H14).original_valid
    # well signed: sent as it is (not signed twice)
    good = tmp / "signed-pdf.edxml"
    good.write_bytes(write(with_pdf(document, pdf)))
    assert send(good, keys, tmp)[0] == 69
    # one byte of the signed page changed
    assert b"So: 05/CT-UBND" in pdf
    broken_pdf = pdf.replace(b"So: 05/CT-UBND", b"So: 06/CT-UBND", 1)
    assert is_signed_pdf(broken_pdf)
    broken = tmp / "broken-pdf.edxml"
    broken.write_bytes(write(with_pdf(document, broken_pdf)))
    refused(send(broken, keys, tmp), 1, "not original-valid")
    refused(send(broken, keys, tmp, "--force"), 1, "not original-valid")
    (tmp / "broken.pdf").write_bytes(broken_pdf)
    code, _, err = run("pdf", "sign", str(tmp / "broken.pdf"), "-o", str(tmp / "resigned.pdf"),
                       "--seal-key", str(keys / f"{H14}.key.pem"), "--seal-cert", str(keys / f"{H14}.cert.pem"),
                       "--trust", str(keys / "ca.pem"))
    refused((code, "", err), 1, "does not verify")
    code, _, err = run("pdf", "sign", str(tmp / "broken.pdf"), "-o", str(tmp / "resigned.pdf"),
                       "--seal-key", str(keys / f"{H14}.key.pem"), "--seal-cert", str(keys / f"{H14}.cert.pem"))
    refused((code, "", err), 2, "--trust")
    assert not (tmp / "resigned.pdf").exists()


def test_pdf_sign_writes_only_an_original_valid_result(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    (attachment,) = directive(tmp).attachments
    (tmp / "plain.pdf").write_bytes(attachment.read())
    out = tmp / "two.pdf"
    code, _, err = run("pdf", "sign", str(tmp / "plain.pdf"), "-o", str(out), "--trust", str(keys / "ca.pem"),
                       "--signer-key", str(keys / "signer.key.pem"), "--signer-cert", str(keys / "signer.cert.pem"),
                       "--seal-key", str(keys / f"{H14}.key.pem"), "--seal-cert", str(keys / f"{H14}.cert.pem"))
    assert code == 0, err
    assert verify_pdf(out.read_bytes(), trust=keys / "ca.pem", agency=H14).original_valid
    # the person's key given as the seal and the seal as the person: refused before signing
    code, _, err = run("pdf", "sign", str(tmp / "plain.pdf"), "-o", str(tmp / "swapped.pdf"),
                       "--signer-key", str(keys / f"{H14}.key.pem"), "--signer-cert", str(keys / f"{H14}.cert.pem"),
                       "--seal-key", str(keys / "signer.key.pem"), "--seal-cert", str(keys / "signer.cert.pem"))
    refused((code, "", err), 1, "names no agency")


def test_an_unsigned_pdf_nothing_signs_is_refused_unless_forced(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    no_person = keys_variant(keys, tmp_path / "noperson", signer=False)
    refused(send(tmp / "demo" / "directive.edxml", no_person, tmp), 1, "--force")
    assert send(tmp / "demo" / "directive.edxml", no_person, tmp, "--force")[0] == 69


def test_an_invalid_document_is_refused(setup) -> None:  # type: ignore[no-untyped-def]
    tmp, keys = setup
    document = directive(tmp)
    unknown = Organization(organ_id="000.00.99.H14", organ_name="UBND Xã Không Có")
    invalid = tmp / "unknown-recipient.edxml"
    invalid.write_bytes(write(document.model_copy(update={"recipients": [unknown]})))
    code, _, err = run("send", str(invalid), "--as", H14, "--keys", str(keys), "--amqp", NO_BROKER,
                       "--ledger", str(tmp / "invalid.db"))
    refused((code, "", err), 1, "000.00.99.H14")
    other = tmp / "from-other.edxml"
    other.write_bytes((tmp / "demo" / "directive.edxml").read_bytes())
    code, _, err = run("send", str(other), "--as", C1, "--keys", str(keys), "--amqp", NO_BROKER,
                       "--ledger", str(tmp / "other.db"))
    refused((code, "", err), 2, f"not from {C1}")
