"""A few KB of KeyInfo must not buy seconds of the receiver's CPU (review of issue 13's inline jobs).

A certificate whose RSA key has a huge public exponent costs milliseconds per signature check, and
a loop of such CA certificates in KeyInfo (A issued by B, B by A) made the chain builder run over
a hundred checks: 570 ms for a 13.6 KB message, on the receiver's event loop. Every certificate a
sender sends is now refused before any chain is built when its key would be that costly
(vbdt.trust.chain.check_key_cost).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import secrets
import time
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

import vbdt
from conftest import H54, H54_DISTRICT
from vbdt.cli.demo import compose
from vbdt.edxml.xmlparse import DS_NS, parse_xml
from vbdt.errors import CertificateRejected, MessageRejected
from vbdt.exchange.pipeline import admit
from vbdt.trust.chain import MAX_RSA_BITS, TrustStore, check_key_cost
from vbdt.trust.keys import SigningKey
from vbdt.trust.pki import certify
from vbdt.trust.xmldsig import check_signature

NOW = dt.datetime.now(dt.UTC)


def _huge_exponent_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """An RSA key whose public exponent is almost as long as its modulus (OpenSSL accepts it)."""
    numbers = rsa.generate_private_key(65537, bits).private_numbers()
    p, q = numbers.p, numbers.q
    phi = (p - 1) * (q - 1)
    while True:
        e = secrets.randbits(bits - 2) | 1 | (1 << (bits - 3))
        if math.gcd(e, phi) == 1:
            break
    d = pow(e, -1, phi)
    return rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(e, p * q)
                                 ).private_key(unsafe_skip_rsa_key_validation=True)


def _ca(key: Any, serial: int, subject: str, issuer: str) -> x509.Certificate:
    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer)).public_key(key.public_key())
            .serial_number(serial).not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))


def _with_keyinfo(signed: bytes, certs: list[x509.Certificate]) -> bytes:
    root = etree.fromstring(signed)
    data = root.find(f".//{{{DS_NS}}}X509Data")
    assert data is not None
    for child in list(data):
        data.remove(child)
    for cert in certs:
        etree.SubElement(data, f"{{{DS_NS}}}X509Certificate").text = base64.b64encode(
            cert.public_bytes(serialization.Encoding.DER)).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_a_certificate_loop_of_costly_keys_is_refused_before_any_chain_is_built(
        exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    pki, folder = exchange_pki
    costly = _huge_exponent_key()
    leaf = certify(SigningKey(costly, _ca(costly, 999, "A", "B"), []), "x", ec.generate_private_key(ec.SECP256R1()).public_key(),
                   organ_id=H54)
    loop = [_ca(costly, 1, "A", "B"), _ca(costly, 2, "A", "B"), _ca(costly, 3, "B", "A"), _ca(costly, 4, "B", "A")]
    document = compose(example_directory, H54, [H54_DISTRICT], number="9", notation="UBND-VP", type_name="Công văn",
                       subject="Về việc số 9", issued=dt.date.today())
    body = _with_keyinfo(vbdt.sign(document, pki.agencies[H54]), [leaf, *loop])
    assert len(body) < 16 * 1024  # what one worker admits on the event loop
    store = TrustStore.from_pem(folder / "ca.pem")
    started = time.perf_counter()
    with pytest.raises(CertificateRejected, match="RSA public exponent of 20[0-9][0-9] bits"):
        check_signature(parse_xml(body), trust=store)
    with pytest.raises(MessageRejected) as refused:
        admit(body, me=H54_DISTRICT, publisher=H54, trust=store, directory=example_directory, pdf_policy="ignore")
    assert refused.value.stage == "verify" and "exponent" in refused.value.reason
    assert time.perf_counter() - started < 0.5  # the loop alone cost 170 ms with 2048-bit keys, 570 ms with 3072
    check_key_cost(pki.agencies[H54].certificate)  # an ordinary certificate passes


def test_a_key_over_4096_bits_is_refused() -> None:
    big = rsa.generate_private_key(65537, MAX_RSA_BITS + 64)
    with pytest.raises(CertificateRejected, match=f"{MAX_RSA_BITS + 64}-bit key"):
        check_key_cost(_ca(big, 1, "big", "big"))
    check_key_cost(_ca(rsa.generate_private_key(65537, 2048), 2, "ok", "ok"))
