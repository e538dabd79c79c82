"""Fuzzing the PDF verifier and signer with damaged signed PDFs.

Whatever the damage (byte flips, truncation, corrupted streams, a broken cross-reference table),
only a :class:`~vbdt.errors.VbdtError` may come out, and a document changed anywhere outside the
seal's own signature value is never original-valid.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbdt.errors import PdfSignatureError, VbdtError
from vbdt.trust.pades import sign_pdf, verify_pdf
from vbdt.trust.pki import TestPki
from vbdt.trust.samplepdf import make_pdf

H14 = "000.00.00.H14"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def pki(h14_pki):  # type: ignore[no-untyped-def]
    return h14_pki


@pytest.fixture(scope="module")
def genuine(pki: tuple[TestPki, Path]) -> bytes:
    keys, _ = pki
    pdf = make_pdf(["CONG VAN", "So: 12/UBND-VP"])
    return sign_pdf(pdf, person=keys.signer, seal=keys.agencies[H14], visible=True)


def _seal_contents(pdf: bytes) -> range:
    """The byte range of the last signature's /Contents hex string (the only bytes it does not cover)."""
    *_, last = re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    start, length, resume = int(last[1]), int(last[2]), int(last[3])
    return range(start + length, resume)


def _regions(pdf: bytes, pattern: bytes) -> list[tuple[int, int]]:
    return [(m.start(1), m.end(1)) for m in re.finditer(pattern, pdf, re.DOTALL) if m.end(1) > m.start(1)]


@st.composite
def mutations(draw: st.DrawFn, pdf: bytes) -> tuple[str, bytes, set[int]]:
    """A damaged copy of ``pdf``, and the offsets whose bytes changed (every offset for truncation)."""
    kind = draw(st.sampled_from(["flip", "truncate", "stream", "xref", "deflate"]))
    data = bytearray(pdf)
    if kind == "truncate":
        cut = draw(st.integers(0, len(pdf) - 1))
        return kind, bytes(data[:cut]), set(range(cut, len(pdf)))
    if kind == "flip":
        spots = draw(st.lists(st.integers(0, len(pdf) - 1), min_size=1, max_size=4, unique=True))
    else:
        pattern = {
            "stream": rb"stream\r?\n(.*?)\r?\nendstream",
            "xref": rb"((?:xref\s.*?trailer)|(?:startxref\s+\d+))",
            "deflate": rb"/FlateDecode.*?stream\r?\n(.{2,40})",
        }[kind]
        regions = _regions(pdf, pattern) or [(0, len(pdf))]
        start, end = draw(st.sampled_from(regions))
        spots = draw(st.lists(st.integers(start, end - 1), min_size=1, max_size=8, unique=True))
    for spot in spots:
        data[spot] ^= draw(st.integers(1, 255))
    return kind, bytes(data), set(spots)


def test_the_fuzzed_document_is_a_real_signed_pdf(pki: tuple[TestPki, Path], genuine: bytes) -> None:
    _, folder = pki
    assert verify_pdf(genuine, trust=folder / "ca.pem", agency=H14).original_valid
    assert b"/FlateDecode" in genuine and b"xref" in genuine  # stream and xref damage have targets


@FUZZ
@given(data=st.data())
def test_damaged_signed_pdfs_fail_cleanly_and_never_pass(pki: tuple[TestPki, Path], genuine: bytes,
                                                       data: st.DataObject) -> None:
    _, folder = pki
    kind, damaged, changed = data.draw(mutations(genuine))
    contents = _seal_contents(genuine)
    outside_signature_value = any(i not in contents for i in changed)
    try:
        result = verify_pdf(damaged, trust=folder / "ca.pem", agency=H14)
    except VbdtError:
        return
    if outside_signature_value:
        assert not result.original_valid, (kind, sorted(changed)[:8])


@FUZZ
@given(data=st.data())
def test_damaged_pdfs_are_signed_or_refused_cleanly(pki: tuple[TestPki, Path], data: st.DataObject) -> None:
    keys, folder = pki
    pdf = make_pdf(["x"])
    _, damaged, _ = data.draw(mutations(pdf))
    try:
        signed = sign_pdf(damaged, person=keys.signer, seal=keys.agencies[H14])
    except PdfSignatureError:
        return
    try:  # what was signed is signed: either a readable verdict or a clean refusal
        verify_pdf(signed, trust=folder / "ca.pem", agency=H14)
    except VbdtError:
        pass


def test_the_verifier_keeps_working_after_the_fuzzing(pki: tuple[TestPki, Path], genuine: bytes) -> None:
    _, folder = pki
    assert verify_pdf(genuine, trust=folder / "ca.pem", agency=H14).original_valid
