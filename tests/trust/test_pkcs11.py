"""Keys on a PKCS#11 token (SoftHSM from Debian's softhsm2): XML and PDF signatures, one token operation each."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import vbdt
from conftest import require_tool
from vbdt.trust.pades import sign_pdf, verify_pdf
from vbdt.trust.pki import TestPki, certify
from vbdt.trust.samplepdf import make_pdf

pkcs11 = pytest.importorskip("pkcs11")

LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
PIN, SO_PIN, TOKEN = "1234", "123456", "vbdt-test-token"
H14 = "000.00.00.H14"


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A fresh SoftHSM token with an RSA and an EC key whose certificates a test CA issued."""
    util = require_tool("softhsm2-util")
    if not Path(LIBRARY).exists():
        pytest.fail(f"{LIBRARY} missing although softhsm2-util is installed")
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the library at C_Initialize, before the first open
    subprocess.run([util, "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", SO_PIN],
                   check=True, capture_output=True)
    pki = TestPki.create([(H14, "UBND tỉnh Cao Bằng")])
    session = pkcs11.lib(LIBRARY).get_token(token_label=TOKEN).open(user_pin=PIN, rw=True)
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
    from pkcs11.util.rsa import encode_rsa_public_key

    rsa_pub, _ = session.generate_keypair(pkcs11.KeyType.RSA, 2048, label="seal", store=True)
    params = session.create_domain_parameters(pkcs11.KeyType.EC, {
        pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")}, local=True)
    ec_pub, _ = params.generate_keypair(label="seal-ec", store=True)
    from cryptography.hazmat.primitives.asymmetric import ec as _ec

    rsa_key = load_der_public_key(encode_rsa_public_key(rsa_pub))
    ec_point = encode_ec_public_key(ec_pub)
    ec_key = load_der_public_key(ec_point)
    assert isinstance(ec_key, _ec.EllipticCurvePublicKey)
    certs = {}
    for label, public in (("seal", rsa_key), ("seal-ec", ec_key)):
        issued = certify(pki.intermediate, "UBND tỉnh Cao Bằng (HSM)", public, organ_id=H14)  # type: ignore[arg-type]
        certs[label] = issued
        from cryptography.hazmat.primitives.serialization import Encoding
        from pkcs11.util.x509 import decode_x509_certificate

        template = decode_x509_certificate(issued.public_bytes(Encoding.DER))
        session.create_object({**template, pkcs11.Attribute.LABEL: label, pkcs11.Attribute.TOKEN: True})
    session.close()
    pki.write(home / "pki")
    trust = home / "pki" / "ca.pem"
    return {"pki": pki, "trust": trust, "certs": certs}


@pytest.mark.parametrize("label", ["seal", "seal-ec"])
def test_envelope_signed_on_the_token_verifies_with_vbdt_and_one_token_operation(
    token: dict[str, object], directive: vbdt.Document, label: str
) -> None:
    from vbdt.trust.pkcs11 import token_signing_key

    key = token_signing_key(LIBRARY, token=TOKEN, pin=PIN, label=label,
                            chain=[token["pki"].intermediate.certificate])  # type: ignore[attr-defined]
    session = key.private_key._session  # type: ignore[union-attr]
    before = session.operations
    signed = vbdt.sign(directive, key)
    assert session.operations == before + 1
    verified = vbdt.verify(signed, trust=token["trust"])  # type: ignore[arg-type]
    assert verified.agency == H14
    assert verified.package == vbdt.read(signed)


def test_pdf_sealed_on_the_token_is_original_valid(token: dict[str, object]) -> None:
    from vbdt.trust.pkcs11 import token_signing_key

    pki = token["pki"]
    seal = token_signing_key(LIBRARY, token=TOKEN, pin=PIN, label="seal",
                             chain=[pki.intermediate.certificate])  # type: ignore[attr-defined]
    person = pki.signer  # type: ignore[attr-defined]
    session = seal.private_key._session  # type: ignore[union-attr]
    before = session.operations
    signed = sign_pdf(make_pdf("Chỉ thị 05/CT-UBND"), person=person, seal=seal)
    assert session.operations == before + 1  # one token operation per signature (no dry-run signing)
    result = verify_pdf(signed, trust=token["trust"])  # type: ignore[arg-type]
    assert result.original_valid, result


def test_wrong_pin_and_unknown_key_are_key_file_errors(token: dict[str, object]) -> None:
    from vbdt.trust.pkcs11 import token_signing_key

    with pytest.raises(vbdt.KeyFileError, match="cannot open token"):
        token_signing_key(LIBRARY, token=TOKEN, pin="0000", label="seal")
    with pytest.raises(vbdt.KeyFileError):
        token_signing_key(LIBRARY, token=TOKEN, pin=PIN, label="no-such-key")
    with pytest.raises(vbdt.KeyFileError):
        token_signing_key("/nonexistent/libpkcs11.so", token=TOKEN, pin=PIN, label="seal")


def test_a_token_key_cannot_be_exported(token: dict[str, object]) -> None:
    from cryptography.hazmat.primitives import serialization

    from vbdt.trust.pkcs11 import token_signing_key

    key = token_signing_key(LIBRARY, token=TOKEN, pin=PIN, label="seal")
    with pytest.raises(vbdt.UsageError):
        key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
