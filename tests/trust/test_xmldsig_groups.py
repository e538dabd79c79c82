"""Issue 14: a bulk directive's envelope signed once per group of recipients from one tree.

:func:`vbdt.trust.xmldsig.sign_per_group` must give, for each group, the very bytes :func:`sign`
gives for the document with only that group in ``To`` (RSA PKCS#1 v1.5 is deterministic, so the
comparison is byte for byte), on both backends, with a big attachment too (hashed apart and put
back in the tree between groups); each envelope verifies and lists its group; bad groups are a
:class:`~vbdt.errors.UsageError`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vbdt
from vbdt.edxml.model import Attachment, Document
from vbdt.edxml.writer import to_tree
from vbdt.errors import UsageError
from vbdt.trust.dsig_backends import BIG_TEXT
from vbdt.trust.pki import TestPki
from vbdt.trust.xmldsig import sign, sign_per_group, verify

H14 = "000.00.00.H14"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestPki, Path]:
    keys = TestPki.create([(H14, "UBND Tỉnh Cao Bằng")])
    folder = tmp_path_factory.mktemp("groups-pki")
    keys.write(folder)
    return keys, folder


def _to_many(directive: vbdt.Document, directory: vbdt.Directory, big: bool) -> Document:
    recipients = [a for a in directory.select(f"{H14}/**", "000.00.00.H54/**") if str(a.organ_id) != H14]
    document = Document(**{**directive.__dict__, "recipients": [directory.organization(str(a.organ_id)) for a in recipients]})
    if big:  # over BIG_TEXT characters of base64: the streamed digest and the texts put back
        blob = Attachment.from_bytes("phu-luc.bin", os.urandom(BIG_TEXT), content_id="cid:big",
                                     content_type="application/octet-stream")
        document = Document(**{**document.__dict__, "attachments": [*document.attachments, blob]})
    return document


@pytest.mark.parametrize("big", [False, True], ids=["small", "big-attachment"])
def test_each_group_is_signed_as_sign_would(dsig_backend, pki, directive: vbdt.Document,  # type: ignore[no-untyped-def]
                                            example_directory: vbdt.Directory, big: bool) -> None:
    keys, folder = pki
    document = _to_many(directive, example_directory, big)
    n = len(document.recipients)
    assert n >= 5
    groups = [range(0, 2), range(2, 4), range(4, n), [n - 1, 0]]
    bodies = list(sign_per_group(document, keys.agencies[H14], groups))
    assert len(bodies) == len(groups)
    # the To elements taken from a tree written before (the bulk sender's validated one)
    assert list(sign_per_group(document, keys.agencies[H14], groups, written=to_tree(document))) == bodies
    for group, body in zip(groups, bodies, strict=True):
        alone = Document(**{**document.__dict__, "recipients": [document.recipients[i] for i in group]})
        assert body == sign(alone, keys.agencies[H14])
        verified = verify(body, trust=folder / "ca.pem")
        assert [str(r.organ_id) for r in verified.package.recipients] == [str(document.recipients[i].organ_id) for i in group]
        assert verified.agency == H14
    if big:
        assert len(bodies[0]) > BIG_TEXT


@pytest.mark.parametrize("groups", [[[]], [[0, 0]], [[-1]], [[10_000]]], ids=["empty", "twice", "negative", "beyond"])
def test_a_bad_group_is_a_usage_error(pki, directive: vbdt.Document, example_directory: vbdt.Directory,  # type: ignore[no-untyped-def]
                                      groups: list[list[int]]) -> None:
    keys, _ = pki
    with pytest.raises(UsageError, match="each once"):
        list(sign_per_group(_to_many(directive, example_directory, False), keys.agencies[H14], groups))
