"""Issue 13: the receiver validates a signer's chain once, then serves the verdict from the store.

The store's own invalidation (a revocation after a CRL update, the CRL's next update, the
certificate's expiry, the TTL, the size bound) is attacked in test_verify_performance.py; here the
cache is followed through the receiving pipeline, which is given the anchors as a path.
"""

from __future__ import annotations

import datetime as dt
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import vbdt
from conftest import H54, H54_DISTRICT
from vbdt.cli.demo import compose
from vbdt.edxml.xmlparse import parse_xml
from vbdt.errors import CertificateRejected, MessageRejected
from vbdt.exchange.pipeline import admit
from vbdt.kept import Kept
from vbdt.trust.chain import TrustStore, anchors_file
from vbdt.trust.pki import TestPki, issue_certificate
from vbdt.trust.xmldsig import check_signature, sign, verify


def _document(directory: vbdt.Directory, number: str) -> vbdt.Document:
    return compose(directory, H54, [H54_DISTRICT], number=number, notation="UBND-VP", type_name="Công văn",
                   subject="Về việc kiểm thử bộ nhớ đệm", issued=date.today())


def _admit(body: bytes, anchors: Path, directory: vbdt.Directory) -> str:
    return admit(body, me=H54_DISTRICT, publisher=H54, trust=anchors, directory=directory, pdf_policy="ignore").sender


def test_the_receivers_thousandth_document_does_not_rebuild_the_chain(
        exchange_pki: Any, example_directory: vbdt.Directory, tmp_path: Path) -> None:
    pki, folder = exchange_pki
    anchors = tmp_path / "ca.pem"
    anchors.write_bytes((folder / "ca.pem").read_bytes())
    bodies = [sign(_document(example_directory, str(n)), pki.agencies[H54]) for n in range(1, 5)]
    store = anchors_file(anchors)  # one store per content: shared with whatever used these anchors before
    before = store.cache_info()
    for body in bodies:
        assert _admit(body, anchors, example_directory) == H54
    # four documents, at most one chain built (none when these anchors saw this signer before):
    # every later one is a hit, keyed on the same certificate
    after = store.cache_info()
    assert after.misses - before.misses <= 1 and (after.hits - before.hits) + (after.misses - before.misses) == 4
    # another signer of the same agency is another key: built once, then served too
    other = issue_certificate(pki.intermediate, "Văn thư 2", organ_id=H54)
    for n in (5, 6):
        assert _admit(sign(_document(example_directory, str(n)), other), anchors, example_directory) == H54
    last = store.cache_info()
    assert (last.hits - after.hits, last.misses - after.misses, last.size - after.size) == (1, 1, 1)
    # new anchors on disk are a new store: nothing it did not validate itself is served
    stranger = TestPki.create([(H54, "Impostor")])
    stranger.write(tmp_path / "other")
    anchors.write_bytes((tmp_path / "other" / "ca.pem").read_bytes())
    os.utime(anchors, ns=(1, 1))
    with pytest.raises(MessageRejected) as info:
        _admit(bodies[0], anchors, example_directory)
    assert info.value.stage == "verify" and "does not chain" in info.value.reason
    assert anchors_file(anchors) is not store


def test_a_cached_verdict_never_outlives_the_moment_asked_about(exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    pki, folder = exchange_pki
    store = TrustStore(TrustStore.from_pem(folder / "ca.pem").anchors, cache_ttl=dt.timedelta(hours=1))
    short = issue_certificate(pki.intermediate, "Văn thư tạm", organ_id=H54, days=1)
    body = sign(_document(example_directory, "9"), short)
    now = dt.datetime.now(dt.UTC)
    first = check_signature(parse_xml(body), trust=store, at=now)
    assert first.verdict.valid_until == short.certificate.not_valid_after_utc
    assert check_signature(parse_xml(body), trust=store, at=now + dt.timedelta(hours=2)).verdict.chain == first.verdict.chain
    assert store.cache_info().hits == 1  # inside the TTL and the chain's validity: served
    with pytest.raises(vbdt.CertificateRejected, match="expired or not yet valid"):
        check_signature(parse_xml(body), trust=store, at=short.certificate.not_valid_after_utc + dt.timedelta(seconds=1))
    with pytest.raises(vbdt.CertificateRejected, match="expired or not yet valid"):  # and not cached as valid after
        verify(body, trust=store, directory=example_directory, at=short.certificate.not_valid_after_utc + dt.timedelta(hours=1))
    assert store.cache_info().misses == 3


def test_a_province_keeps_every_signer_of_its_communes_cached(
        exchange_pki: Any, example_directory: vbdt.Directory, dsig_backend: Any) -> None:
    """Receipts from a province's hundreds of communes (thousands for a national directive): each
    signer's certificate, name, chain verdict and loaded key are kept, not evicted after 32 or 256
    signers and rebuilt for every message (found by the 10,000-receiver benchmark)."""
    from vbdt.trust import xmldsig

    pki, folder = exchange_pki
    store = TrustStore(TrustStore.from_pem(folder / "ca.pem").anchors)
    signers = [issue_certificate(pki.intermediate, f"Văn thư {n}", organ_id=H54, kind="ec") for n in range(300)]
    bodies = [sign(_document(example_directory, str(n)), key) for n, key in enumerate(signers)]
    for _ in range(2):
        for body, key in zip(bodies, signers, strict=True):
            assert check_signature(parse_xml(body), trust=store).verdict.leaf == key.certificate
    assert (store.cache_info().misses, store.cache_info().hits) == (300, 300)  # one chain built per signer
    texts = {"".join(t.split()) for body in bodies for t in parse_xml(body).getroot().xpath(
        "//*[local-name()='X509Certificate'][1]/text()")}
    assert texts <= set(xmldsig._CERTS.keys())  # decoded once each, all still held
    if dsig_backend.name == "xmlsec":
        assert len(dsig_backend._public) >= 300  # every signer's key loaded once, still loaded
        for n, key in enumerate(signers):
            sign(_document(example_directory, f"r{n}"), key, backend=dsig_backend)
        assert all(dsig_backend._keys.get(key.private_key) for key in signers)  # a host signing for each


def test_certificates_kept_before_the_chain_is_checked_are_bounded_in_size(
        exchange_pki: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyInfo certificates are remembered before their chain is validated: a peer sending
    certificates of its own making (large ones, many of them) must not grow the cache without bound."""
    from vbdt.trust import xmldsig

    pki, _ = exchange_pki
    cert = pki.agencies[H54].certificate
    kept: Kept[str, Any] = Kept(xmldsig._CERTS_KEPT, max_bytes=100_000, size=lambda text, _: len(text))
    monkeypatch.setattr(xmldsig, "_CERTS", kept)
    xmldsig._keep_certificate("A" * (xmldsig._CERT_TEXT_KEPT + 1), cert)  # larger than any real certificate
    assert not len(xmldsig._CERTS)
    for n in range(100):
        xmldsig._keep_certificate(f"{n:05d}" + "B" * 4_000, cert)
    assert kept.held_bytes <= 100_000 and len(kept) == 100_000 // 4_005
    assert kept.held_bytes == sum(len(t) for t in kept.keys())  # the newest kept, the oldest gone
    assert f"{99:05d}" + "B" * 4_000 in xmldsig._CERTS and f"{0:05d}" + "B" * 4_000 not in xmldsig._CERTS


def test_an_anchors_file_is_one_store_per_content(exchange_pki: Any, tmp_path: Path) -> None:
    _, folder = exchange_pki
    anchors = tmp_path / "ca.pem"
    anchors.write_bytes((folder / "ca.pem").read_bytes())
    store = anchors_file(anchors)
    assert anchors_file(anchors) is store  # unchanged: the same store, whoever asks
    copy = tmp_path / "copy.pem"
    copy.write_bytes(anchors.read_bytes())
    assert anchors_file(copy) is store  # the same anchors: the same verdicts
    stranger = TestPki.create([(H54, "Impostor")])
    stranger.write(tmp_path / "other")
    anchors.write_bytes((tmp_path / "other" / "ca.pem").read_bytes())  # at once, in place: times may not move
    replaced = anchors_file(anchors)
    assert replaced is not store and replaced.anchors != store.anchors
    anchors.unlink()
    with pytest.raises(CertificateRejected, match="cannot read the trust anchors"):
        anchors_file(anchors)
    with pytest.raises(CertificateRejected, match="cannot read the trust anchors"):
        anchors_file(Path(str(anchors) + "\0"))
    anchors.write_bytes(b"not PEM")
    with pytest.raises(CertificateRejected, match="cannot read the trust anchors"):
        anchors_file(anchors)


def test_anchors_swapped_for_a_file_of_the_same_size_and_time_are_a_new_store(exchange_pki: Any, tmp_path: Path) -> None:
    """Size and modification time alone miss a swap (images built with fixed times, a file of the
    same length): the store is found by the file's content."""
    _, folder = exchange_pki
    stranger = TestPki.create([(H54, "Impostor")])
    stranger.write(tmp_path / "other")
    ours, theirs = (folder / "ca.pem").read_bytes(), (tmp_path / "other" / "ca.pem").read_bytes()
    size = max(len(ours), len(theirs))
    anchors = tmp_path / "ca.pem"
    anchors.write_bytes(ours.ljust(size, b"\n"))  # text after the last certificate is ignored
    os.utime(anchors, ns=(1, 1))
    store = anchors_file(anchors)
    swapped = tmp_path / "swapped.pem"
    swapped.write_bytes(theirs.ljust(size, b"\n"))
    os.utime(swapped, ns=(1, 1))
    os.replace(swapped, anchors)  # same size, same modification time, another file
    replaced = anchors_file(anchors)
    assert replaced is not store and replaced.anchors != store.anchors
