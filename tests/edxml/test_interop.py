"""Every real package in tests/data/interop: read leniently, each known defect reported, round trip."""

from pathlib import Path

import pytest

import vbdt
from conftest import INTEROP, INTEROP_FILES


def codes(report: vbdt.ValidationReport) -> set[str]:
    return {f.code for f in report.findings}


@pytest.mark.parametrize("path", INTEROP_FILES, ids=lambda p: p.name)
def test_lenient_read_returns_a_model_and_round_trips(path: Path) -> None:
    report = vbdt.read_lenient(path)
    assert report.package is not None
    written = vbdt.write(report.package)
    again = vbdt.read_lenient(written)
    assert again.package == report.package
    # and the written form is in the standard shape: no quirk left to repair
    assert not {"EDX901", "EDX902", "EDX903"} & codes(again)


@pytest.mark.parametrize("path", INTEROP_FILES, ids=lambda p: p.name)
def test_strict_read_refuses_the_quirks(path: Path) -> None:
    with pytest.raises(vbdt.ValidationError) as info:
        vbdt.read(path)
    assert info.value.errors
    assert all(f.line for f in info.value.errors)


def test_signature_outside_xmldsig_namespace_sha1_and_truncated_certificate() -> None:
    report = vbdt.read_lenient(INTEROP / "new-document-small.edxml")
    by_code = {f.code: f for f in report.findings}
    assert by_code["EDX901"].severity is vbdt.Severity.WARNING
    assert by_code["EDX901"].line == 103
    assert by_code["EDX901"].path == "/edXML/edXMLEnvelope/edXMLHeader/Signature"
    assert "SHA-1" in by_code["EDX904"].message
    assert "MIIFqTCCBJG" in by_code["EDX905"].message and "truncated" in by_code["EDX905"].message
    assert by_code["EDX906"].path.endswith("Transforms/Transform[2]") and "2001/10/xml-exc-c14n#" in by_code["EDX906"].message
    strict = vbdt.validate(INTEROP / "new-document-small.edxml")
    assert {f.code for f in strict.errors} >= {"EDX901", "EDX904", "EDX905", "EDX906"}


def test_document_id_and_promulgation_date_disagree() -> None:
    report = vbdt.read_lenient(INTEROP / "new-document-small.edxml")
    finding = next(f for f in report.findings if f.code == "EDX112")
    assert finding.path.endswith("MessageHeader/DocumentId") and finding.line == 46
    assert "2015/09/30" in finding.message and "2019/04/11" in finding.message


def test_impossible_date_in_business_document_id() -> None:
    report = vbdt.read_lenient(INTEROP / "new-document-small.edxml")
    finding = next(f for f in report.findings if f.code == "EDX201")
    assert "2014/02/30" in finding.message and finding.path.endswith("Bussiness/DocumentId")


def test_code_number_not_a_number_and_three_group_organ_id() -> None:
    report = vbdt.read_lenient(INTEROP / "new-document.edxml")
    found = {f.code: f for f in report.findings}
    assert "'74fass22'" in found["EDX202"].message
    assert found["EDX101"].path == "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To/OrganId"
    assert "28.22.H17" in found["EDX101"].message and "found 3" in found["EDX101"].message
    assert found["EDX111"].message.startswith("DocumentId names '000.00.00.G22' but From is '000.00.00.A80'")
    doc = report.package
    assert isinstance(doc, vbdt.Document)
    assert not doc.recipients[0].organ_id.is_standard  # kept, not dropped


@pytest.mark.parametrize("path", sorted(INTEROP.glob("status-*.edxml")), ids=lambda p: p.name)
def test_status_messages_single_text_code(path: Path) -> None:
    report = vbdt.read_lenient(path)
    status = report.package
    assert isinstance(status, vbdt.StatusMessage)
    assert status.status_code.value == path.name[7:9]
    assert status.response_for.code == vbdt.Code(number="7816", notation="VPCP-TTĐT")
    assert {f.code for f in report.findings} == {"EDX903"}
    assert report.valid  # only warnings once the quirk is repaired


def test_business_variants() -> None:
    update = vbdt.read_lenient(INTEROP / "update-document.edxml").package
    revoke = vbdt.read_lenient(INTEROP / "revocation-document.edxml").package
    replace = vbdt.read_lenient(INTEROP / "replacement-document.edxml").package
    assert isinstance(update, vbdt.Document) and isinstance(revoke, vbdt.Document) and isinstance(replace, vbdt.Document)
    assert update.business.doc_type is vbdt.BusinessDocType.UPDATE
    assert update.business.document_info is not None
    assert [r.receiver_type for r in update.business.document_info.receivers] == [0, 1]
    assert revoke.business.doc_type is vbdt.BusinessDocType.REVOKE
    assert revoke.response_for[0].code == vbdt.Code(number="267", notation="VPCP-TTĐT")
    assert replace.business.doc_type is vbdt.BusinessDocType.REPLACE
    assert [len(r.organ_ids) for r in replace.business.replacements] == [2, 2]


def test_large_attachment_is_decoded_lazily_and_correctly() -> None:
    doc = vbdt.read_lenient(INTEROP / "new-document.edxml").package
    assert isinstance(doc, vbdt.Document)
    attachment = doc.attachments[0]
    assert isinstance(attachment.content, vbdt.Base64Content)
    data = attachment.read()
    assert data[:2] == b"PK" and len(data) == attachment.size
