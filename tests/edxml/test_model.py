from datetime import UTC, date, datetime, timedelta

import pytest

import vbdt
from vbdt import Attachment, Code, Document, InvalidModel, Organization, PromulgationInfo, StatusCode, StatusMessage


def minimal(**changes: object) -> Document:
    fields: dict[str, object] = {
        "sender": Organization(organ_id="000.00.00.H54", organ_name="UBND Tỉnh Thái Bình"),
        "recipients": [Organization(organ_id="000.00.01.H54")],
        "code": Code(number="12", notation="QĐ-UBND"),
        "promulgation": PromulgationInfo(date=date(2026, 1, 5)),
        "subject": "Về việc giao chỉ tiêu",
    }
    fields.update(changes)
    return Document(**fields)  # type: ignore[arg-type]


def test_document_id_is_derived() -> None:
    assert minimal().document_id == "000.00.00.H54,2026/01/05,12/QĐ-UBND"
    assert minimal(document_id="x").document_id == "x"


def test_manifest_is_derived_from_attachments() -> None:
    doc = minimal(
        attachments=[
            Attachment.from_bytes("a.pdf", b"%PDF-1.7 a", content_id="cid:1"),
            Attachment.from_bytes("b.docx", b"PK..", content_id="cid:2", description="Phụ lục"),
        ]
    )
    assert [(m.content_id, m.attachment_name, m.content_type) for m in doc.manifest] == [
        ("cid:1", "a.pdf", "application/pdf"),
        ("cid:2", "b.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ]
    assert doc.manifest[1].description == "Phụ lục"
    doc.attachments.pop()
    assert len(doc.manifest) == 1


def test_invalid_values_raise_a_vbdt_error() -> None:
    with pytest.raises(InvalidModel, match="organ_id"):
        Organization(organ_id="28.22.H17")
    with pytest.raises(InvalidModel, match="cannot appear in XML"):
        minimal(subject="bell \x07")
    with pytest.raises(InvalidModel):
        minimal(code="12/QĐ")


def test_code_parse() -> None:
    assert Code.parse("7816/VPCP-TTĐT") == Code(number="7816", notation="VPCP-TTĐT")
    assert str(Code.parse(" 05/CT-UBND ")) == "05/CT-UBND"
    with pytest.raises(InvalidModel):
        Code.parse("7816")


def test_timestamps_are_vietnam_time_whole_seconds() -> None:
    utc = datetime(2026, 1, 5, 1, 2, 3, 999, tzinfo=UTC)
    status = StatusMessage(
        sender=Organization(organ_id="000.00.01.H54"),
        response_for=vbdt.ResponseFor(organ_id="000.00.00.H54", document_id="x"),
        status_code=StatusCode.ARRIVED,
        timestamp=utc,
    )
    assert status.timestamp.utcoffset() == timedelta(hours=7)
    assert status.timestamp.hour == 8 and status.timestamp.microsecond == 0
    naive = StatusMessage(**{**status.model_dump(), "timestamp": datetime(2026, 1, 5, 8, 0)})
    assert naive.timestamp.tzinfo is not None and naive.timestamp.hour == 8


def test_status_description_defaults_to_label_except_rejection() -> None:
    common = {
        "sender": Organization(organ_id="000.00.01.H54"),
        "response_for": vbdt.ResponseFor(organ_id="000.00.00.H54", document_id="x"),
        "timestamp": datetime(2026, 1, 5, 8, 0),
    }
    assert StatusMessage(status_code=StatusCode.ACCEPTED, **common).description == StatusCode.ACCEPTED.label
    assert StatusMessage(status_code=StatusCode.REJECTED, **common).description is None


def test_codes_carry_vietnamese_labels() -> None:
    assert {c.value for c in StatusCode} == {"01", "02", "03", "04", "05", "06", "13", "15", "16"}
    assert vbdt.Priority.IMMEDIATE.label == "Hỏa tốc"
    assert vbdt.BusinessDocType.REVOKE.label == "Thu hồi văn bản điện tử"
    assert vbdt.SteeringType(1) is vbdt.SteeringType.DIRECTIVE


def test_attachment_sources(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.pdf"
    path.write_bytes(b"hello")
    from_file = Attachment.from_file(path)
    assert from_file.size == 5 and from_file.read() == b"hello"
    assert from_file.content == vbdt.BytesContent(b"hello")
    assert vbdt.Base64Content("aGVs\nbG8=").read() == b"hello"
    assert vbdt.Base64Content("aGVsbG8=").size == 5
    with pytest.raises(vbdt.AttachmentError, match="not valid base64"):
        vbdt.Base64Content("aGVsbG8").read()
    with pytest.raises(vbdt.AttachmentError, match="does not exist"):
        Attachment.from_file(tmp_path / "missing.pdf")
