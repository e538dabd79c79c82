"""admit is total: mutated real packages (signed with the test PKI) come out admitted or MessageRejected, nothing else.

Three mutators: bytes anywhere in the signed package; garbage in the signer's X509Certificate
(base64 that does not decode, or decodes to no certificate); a corrupted signed PDF inside a package
whose envelope is signed again, so that pyHanko reads the broken PDF. After each case the original
package is still admitted (the receiver is not left in a broken state).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vbdt
from conftest import H54, H54_DISTRICT
from vbdt.cli.demo import compose
from vbdt.edxml.model import Attachment
from vbdt.errors import MessageRejected
from vbdt.exchange.pipeline import Admitted, admit
from vbdt.trust.xmldsig import sign

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def world(exchange_pki: Any, example_directory: vbdt.Directory) -> dict[str, Any]:
    pki, folder = exchange_pki
    document = compose(example_directory, H54, [H54_DISTRICT], number="77", notation="UBND-VP", type_name="Công văn",
                       subject="Về việc kiểm thử", issued=date.today())
    signed = vbdt.pack(document, pki.agencies[H54], person=pki.signer, seal=pki.agencies[H54])
    opened = vbdt.unpack(signed, trust=folder / "ca.pem", directory=example_directory)
    return {"pki": pki, "trust": folder / "ca.pem", "directory": example_directory, "signed": signed, "document": opened.package}


def _admit(world: dict[str, Any], body: bytes) -> Admitted | None:
    try:
        return admit(body, me=H54_DISTRICT, publisher=H54, trust=world["trust"], directory=world["directory"])
    except MessageRejected as exc:  # the only exception allowed out, with a stage and a reason
        assert exc.stage and exc.reason
        # an answer (02) may only name what the signature vouches for
        assert exc.sender in (None, H54) and (exc.document_id is None or exc.sender is not None)
        return None


def _still_works(world: dict[str, Any]) -> None:
    admitted = _admit(world, world["signed"])
    assert admitted is not None and admitted.sender == H54


@FUZZ
@given(data=st.data())
def test_mutated_bytes_are_admitted_or_rejected(world: dict[str, Any], data: st.DataObject) -> None:
    body = bytearray(world["signed"])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body) - 1))
        cut = data.draw(st.integers(0, 16))
        body[at : at + cut] = data.draw(st.binary(max_size=16))
    _admit(world, bytes(body))
    _still_works(world)


_CERT = re.compile(rb"(<(?:\w+:)?X509Certificate>)([^<]*)(</(?:\w+:)?X509Certificate>)")
_B64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n -_*", max_size=400)


@FUZZ
@given(garbage=st.one_of(_B64, st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode())))
def test_garbage_certificates_are_rejected(world: dict[str, Any], garbage: str) -> None:
    body, replaced = _CERT.subn(lambda m: m.group(1) + garbage.encode() + m.group(3), world["signed"], count=1)
    assert replaced == 1
    assert _admit(world, body) is None
    _still_works(world)


def _with_pdf(world: dict[str, Any], pdf: bytes) -> bytes:
    document = world["document"]
    original = document.attachments[0]
    attachment = Attachment.from_bytes(original.name, pdf, content_id=original.content_id, content_type=original.content_type)
    # the envelope is signed again over the broken PDF: the receiver must read the PDF itself
    return sign(document.model_copy(update={"attachments": [attachment]}), world["pki"].agencies[H54])


@FUZZ
@given(data=st.data())
def test_corrupted_pdfs_in_a_signed_envelope_are_rejected(world: dict[str, Any], data: st.DataObject) -> None:
    pdf = bytearray(world["document"].attachments[0].read())
    streams = [m.end() for m in re.finditer(rb"stream\r?\n", pdf)] or [0]
    for _ in range(data.draw(st.integers(1, 3))):
        # mostly inside streams (zlib, xref and signature contents), sometimes anywhere
        at = data.draw(st.one_of(st.sampled_from(streams).flatmap(lambda s: st.integers(s, min(s + 64, len(pdf) - 1))),
                                 st.integers(0, len(pdf) - 1)))
        cut = data.draw(st.integers(0, 8))
        pdf[at : at + cut] = data.draw(st.binary(min_size=1, max_size=8))
    admitted = _admit(world, _with_pdf(world, bytes(pdf)))
    if admitted is None:
        return
    assert admitted.unpacked.pdfs  # still original-valid: then it really was verified


def test_an_unexpected_exception_below_admit_is_a_rejection_and_an_error_log(world: dict[str, Any],
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    class BrokenDirectory(vbdt.Directory):
        """A directory whose lookup has a bug (a foreign exception from a lower layer)."""

        def __contains__(self, organ_id: object) -> bool:
            raise RuntimeError("bug in a lower layer")

    directory = world["directory"]
    broken = BrokenDirectory(list(directory))
    with caplog.at_level(logging.ERROR, logger="vbdt.exchange.pipeline"), pytest.raises(MessageRejected) as caught:
        admit(world["signed"], me=H54_DISTRICT, publisher=H54, trust=world["trust"], directory=broken)
    assert "RuntimeError: bug in a lower layer" in caught.value.reason and caught.value.sender is None
    assert caplog.records and caplog.records[-1].exc_info is not None  # the traceback is there for the developers
    _still_works(world)


def test_the_receivers_limits_reach_the_pdfs(world: dict[str, Any]) -> None:
    # person + seal is two PDF signatures: a receiver allowing one refuses the package, answering its sender
    tight = dataclasses.replace(vbdt.Limits(), max_pdf_signatures=1)
    with pytest.raises(MessageRejected, match="max_pdf_signatures") as refused:
        admit(world["signed"], me=H54_DISTRICT, publisher=H54, trust=world["trust"], directory=world["directory"],
              limits=tight)
    assert refused.value.sender == H54
    _still_works(world)
