"""Issue 13, the trust part: one parse per message, chain verdicts cached, backends chosen safely.

The cache is attacked where it could go wrong: a revoked certificate after a CRL update, an
expired chain, a TTL, other intermediates presented; each time the good signer still verifies.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import time
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree

import vbdt
from vbdt.edxml.xmlparse import DS_NS, parse_xml
from vbdt.errors import CertificateRejected, SignatureInvalid, SignerMismatch, UnsafeXml
from vbdt.trust import dsig_backends
from vbdt.trust.chain import TrustStore
from vbdt.trust.pki import TestPki, issue_certificate
from vbdt.trust.xmldsig import sign, verify, verify_tree

H14, H54 = "000.00.00.H14", "000.00.00.H54"
pytestmark = pytest.mark.usefixtures("dsig_backend")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestPki, Path]:
    pki = TestPki.create([(H14, "UBND Tỉnh Cao Bằng"), (H54, "UBND Tỉnh Thái Bình")])
    folder = tmp_path_factory.mktemp("perf-pki")
    pki.write(folder)
    return pki, folder


def _crl(keys: TestPki, revoked: list[x509.Certificate], *, hours: float = 24) -> x509.CertificateRevocationList:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(keys.intermediate.certificate.subject)
               .last_update(now - dt.timedelta(minutes=1)).next_update(now + dt.timedelta(hours=hours)))
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build())
    return builder.sign(keys.intermediate.private_key, hashes.SHA256())


def test_verify_tree_checks_the_tree_it_is_given(pki, directive: vbdt.Document, dsig_backend) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    signed = sign(directive, keys.agencies[H14])
    tree = parse_xml(signed)  # the receiving pipeline's one parse (then validate, then verify)
    before = etree.tostring(tree)
    # the backend's check leaves the tree exactly as it was (the signature is put back in place)
    dsig_backend.check(tree.getroot().find(f".//{{{DS_NS}}}Signature"), keys.agencies[H14].certificate,
                       legacy_sha1=False)
    assert etree.tostring(tree) == before
    result = verify_tree(tree, trust=TrustStore.from_pem(folder / "ca.pem"))
    assert result.package == directive and result.agency == H14
    # a change made to the parsed tree is a change to what was signed
    changed = parse_xml(signed)
    changed.getroot().find(f".//{{{vbdt.edxml.xmlparse.EDXML_NS}}}Subject").text = "Về việc khác"
    with pytest.raises(SignatureInvalid):
        verify_tree(changed, trust=folder / "ca.pem")
    assert verify_tree(parse_xml(signed), trust=folder / "ca.pem").package == directive


def test_verify_tree_refuses_a_tree_the_hardened_parser_did_not_make(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    signed = sign(directive, keys.agencies[H14])
    lax = etree.XMLParser(resolve_entities=False)
    with_dtd = etree.fromstring(signed.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY e "So">]>', 1), lax).getroottree()
    with pytest.raises(UnsafeXml):
        verify_tree(with_dtd, trust=folder / "ca.pem")
    assert verify_tree(parse_xml(signed), trust=folder / "ca.pem").agency == H14


def test_a_comment_cannot_shorten_signed_text(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    # The SAML comment truncation (CVE-2017-11427): the model must read the text C14N signed.
    keys, folder = pki
    signed = sign(directive, keys.agencies[H14])
    cut = signed.replace("Về việc tăng".encode(), "Về việc <!--x-->tăng".encode(), 1)
    assert cut != signed
    assert verify(cut, trust=folder / "ca.pem").package.subject == directive.subject


def test_the_second_verify_of_a_signer_does_not_rebuild_its_chain(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    store = TrustStore.from_pem(folder / "ca.pem")
    signed = sign(directive, keys.agencies[H14])
    first = verify(signed, trust=store)
    assert (store.cache_info().hits, store.cache_info().misses) == (0, 1)
    for _ in range(3):
        again = verify(signed, trust=store)
        assert again.verdict.chain == first.verdict.chain and again.certificate == keys.agencies[H14].certificate
    assert (store.cache_info().hits, store.cache_info().misses, store.cache_info().size) == (3, 1, 1)
    # the binding is not cached: the same cached signer, claiming another agency, is refused
    forged = sign(directive.model_copy(update={"sender": vbdt.Directory.load(
        vbdt.edxml.resources.example_directory_path()).organization(H54)}), keys.agencies[H14])
    with pytest.raises(SignerMismatch):
        verify(forged, trust=store)
    assert store.cache_info().hits == 4
    # other intermediates presented are another key: validated, not served from the first entry
    store.validate(keys.agencies[H14].certificate, [keys.intermediate.certificate, keys.root.certificate])
    assert store.cache_info().misses == 2


def test_a_revocation_after_a_crl_update_is_refused_at_once(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    store = TrustStore.from_pem(folder / "ca.pem", [_crl(keys, [])])
    signed, other = sign(directive, keys.agencies[H14]), issue_certificate(keys.intermediate, "Cao Bằng 2", organ_id=H14)
    verify(signed, trust=store)
    verify(signed, trust=store)
    assert store.cache_info().hits == 1
    store.update_crls([_crl(keys, [keys.agencies[H14].certificate])])
    assert store.cache_info().size == 0
    with pytest.raises(CertificateRejected, match="revoked"):
        verify(signed, trust=store)
    with pytest.raises(CertificateRejected, match="revoked"):  # refusals are never cached
        verify(signed, trust=store)
    assert verify(sign(directive, other), trust=store).certificate == other.certificate  # the rest still works


def test_the_crl_next_update_and_the_certificate_expiry_end_an_entry(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    store = TrustStore.from_pem(folder / "ca.pem", [_crl(keys, [], hours=1)])
    signed = sign(directive, keys.agencies[H14])
    now = dt.datetime.now(dt.UTC)
    verdict = verify(signed, trust=store).verdict
    assert verdict.valid_until == store.crls[0].next_update_utc
    verify(signed, trust=store, at=now + dt.timedelta(minutes=30))
    assert store.cache_info().hits == 1
    verify(signed, trust=store, at=now + dt.timedelta(hours=2))  # past the CRL's next update: rebuilt
    assert store.cache_info().misses == 2
    # a signer whose certificate expires: the cached verdict does not outlive it
    short = issue_certificate(keys.intermediate, "Cao Bằng tạm", organ_id=H14, days=1)
    plain = TrustStore.from_pem(folder / "ca.pem")
    short_signed = sign(directive, short)
    assert verify(short_signed, trust=plain).verdict.valid_until == short.certificate.not_valid_after_utc
    with pytest.raises(CertificateRejected, match="expired or not yet valid"):
        verify(short_signed, trust=plain, at=short.certificate.not_valid_after_utc + dt.timedelta(minutes=1))
    assert plain.cache_info().misses == 2


def test_the_ttl_ends_an_entry_and_the_size_is_bounded(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    store = TrustStore(TrustStore.from_pem(folder / "ca.pem").anchors, cache_ttl=dt.timedelta(seconds=0.2), cache_size=1)
    signed = sign(directive, keys.agencies[H14])
    verify(signed, trust=store)
    verify(signed, trust=store)
    time.sleep(0.3)
    verify(signed, trust=store)
    assert (store.cache_info().hits, store.cache_info().misses) == (1, 2)
    store.validate(keys.agencies[H54].certificate, [keys.intermediate.certificate])
    assert store.cache_info().size == 1  # the least recently used went out
    verify(signed, trust=store)
    assert store.cache_info().misses == 4


def test_a_path_to_the_anchors_reuses_one_store_until_the_file_changes(pki, directive: vbdt.Document, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    keys, folder = pki
    anchors = tmp_path / "ca.pem"
    anchors.write_bytes((folder / "ca.pem").read_bytes())
    signed = sign(directive, keys.agencies[H14])
    first = verify(signed, trust=anchors).verdict
    assert verify(signed, trust=anchors).verdict.chain == first.chain
    stranger = TestPki.create([(H14, "Impostor")])
    stranger.write(tmp_path / "other")
    anchors.write_bytes((tmp_path / "other" / "ca.pem").read_bytes() + b"\n")  # another root, another size
    with pytest.raises(CertificateRejected):
        verify(signed, trust=anchors)


def test_a_libxml2_mismatch_falls_back_to_signxml_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import xmlsec

    monkeypatch.delenv("VBDT_DSIG_BACKEND")
    monkeypatch.setattr(xmlsec, "get_libxml_version", lambda: (2, 9, 1))
    dsig_backends._xmlsec_backend.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="falls back to signxml"):
            assert dsig_backends.default_backend().name == "signxml"
        assert dsig_backends.available_backends() == ["signxml"]
        with pytest.raises(vbdt.VbdtError, match="not available"):
            dsig_backends.get_backend("xmlsec")
    finally:
        dsig_backends._xmlsec_backend.cache_clear()
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dsig_backends.default_backend().name == "xmlsec"


def test_an_xmlsec_that_fails_to_import_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __getattr__(self, name: str) -> object:
            raise RuntimeError("lxml & xmlsec libxml2 library version mismatch")

    monkeypatch.delenv("VBDT_DSIG_BACKEND")
    monkeypatch.setitem(sys.modules, "xmlsec", Broken())
    dsig_backends._xmlsec_backend.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="falls back to signxml"):
            assert dsig_backends.default_backend().name == "signxml"
    finally:
        monkeypatch.undo()
        dsig_backends._xmlsec_backend.cache_clear()
    assert importlib.import_module("xmlsec") is not None and dsig_backends.default_backend().name == "xmlsec"


def test_the_backend_checks_with_the_chosen_leaf_only(pki, directive: vbdt.Document, dsig_backend) -> None:  # type: ignore[no-untyped-def]
    # KeyInfo names the victim's real certificate; the attacker's key signed. The backend is handed
    # the victim's certificate and must refuse: it never takes a key from KeyInfo itself.
    keys, _ = pki
    tree = parse_xml(sign(directive, keys.agencies[H54]))
    signature = tree.getroot().find(f".//{{{DS_NS}}}Signature")
    with pytest.raises(SignatureInvalid):
        dsig_backend.check(signature, keys.agencies[H14].certificate, legacy_sha1=False)
    dsig_backend.check(signature, keys.agencies[H54].certificate, legacy_sha1=False)


def test_check_signature_then_bind_package_is_verify_tree(pki, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    # the receiving pipeline's order: the signature checked on the validated tree, then the model
    # built from that tree, then the binding
    from vbdt.edxml.reader import build_package
    from vbdt.trust.xmldsig import bind_package, check_profile, check_signature

    keys, folder = pki
    signed = sign(directive, keys.agencies[H14])
    tree = parse_xml(signed)
    assert check_profile(tree.getroot()) is tree.getroot().find(f".//{{{DS_NS}}}Signature")
    before = etree.tostring(tree)
    check = check_signature(tree, trust=folder / "ca.pem")
    assert etree.tostring(tree) == before  # left as it was: the model is built from it next
    package = build_package(tree, []).package
    assert package is not None
    directory = vbdt.Directory.load(vbdt.edxml.resources.example_directory_path())
    verified = bind_package(check, package, directory=directory)
    whole = verify_tree(parse_xml(signed), trust=folder / "ca.pem", directory=directory)
    fields = ("package", "agency", "signer", "certificate", "chain", "binding", "signature_algorithm", "signing_time")
    assert [getattr(verified, f) for f in fields] == [getattr(whole, f) for f in fields]
    assert verified.agency == H14 and verified.package == directive
    other = directive.model_copy(update={"sender": directory.organization(H54)})
    with pytest.raises(SignerMismatch):
        bind_package(check, other)
