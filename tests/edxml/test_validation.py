"""Schema and business rules: each finding with a stable code, line, path and an actionable message."""

from datetime import date

import pytest

import vbdt
from conftest import INTEROP


def findings_for(data: bytes, **kw: object) -> dict[str, vbdt.Finding]:
    report = vbdt.validate(data, today=date(2026, 11, 23), **kw)  # type: ignore[arg-type]
    return {f.code: f for f in report.findings}


def test_the_demo_directive_is_valid(directive: vbdt.Document, example_directory: vbdt.Directory) -> None:
    report = vbdt.validate(vbdt.write(directive), directory=example_directory)
    assert report.valid, [f.one_line() for f in report.findings]
    assert vbdt.check(directive, directory=example_directory) == []


def test_unknown_agency(directive: vbdt.Document, example_directory: vbdt.Directory) -> None:
    directive.recipients.append(vbdt.Organization(organ_id="000.00.00.H99"))
    found = findings_for(vbdt.write(directive), directory=example_directory)
    assert "'000.00.00.H99' is not in the agency directory" in found["EDX102"].message
    assert found["EDX102"].path.endswith(f"To[{len(directive.recipients)}]/OrganId")
    assert found["EDX102"].line


def test_schema_errors_name_line_and_path(directive: vbdt.Document) -> None:
    data = vbdt.write(directive).replace(b"<edXML:Priority>1</edXML:Priority>", b"<edXML:Priority>9</edXML:Priority>")
    report = vbdt.validate(data)
    finding = next(f for f in report.errors if f.code == "EDX001")
    assert finding.path == "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/OtherInfo/Priority"
    assert finding.line and "9" in finding.message
    assert report.package is None or isinstance(report.package, vbdt.Document)


def test_missing_required_element(directive: vbdt.Document) -> None:
    data = vbdt.write(directive)
    start, end = data.index(b"<edXML:Subject>"), data.index(b"</edXML:Subject>") + len(b"</edXML:Subject>")
    report = vbdt.validate(data[:start] + data[end:])
    assert not report.valid
    assert any("Subject" in f.message for f in report.errors)


def test_bad_base64_is_reported_on_its_element(directive: vbdt.Document) -> None:
    data = vbdt.write(directive)
    start = data.index(b"<edXML:ContentTransferEncoded>") + len(b"<edXML:ContentTransferEncoded>")
    data = data[:start] + b"!!!not-base64!!!" + data[start:]
    found = findings_for(data)
    assert found["EDX303"].path.endswith("Attachment/ContentTransferEncoded")
    with pytest.raises(vbdt.ValidationError):
        vbdt.read(data)


def test_manifest_and_attachments_must_match(directive: vbdt.Document) -> None:
    data = vbdt.write(directive).replace(b"<edXML:ContentId>cid:1</edXML:ContentId>", b"<edXML:ContentId>cid:9</edXML:ContentId>", 1)
    messages = [f.message for f in vbdt.validate(data).errors if f.code == "EDX301"]
    assert any("cid:9" in m for m in messages) and any("cid:1" in m for m in messages)


def test_duplicate_content_ids(directive: vbdt.Document) -> None:
    directive.attachments.append(vbdt.Attachment.from_bytes("b.pdf", b"%PDF", content_id="cid:1"))
    assert "EDX302" in findings_for(vbdt.write(directive))


def test_no_recipient_and_duplicates(directive: vbdt.Document) -> None:
    directive.recipients = []
    assert "EDX001" in findings_for(vbdt.write(directive))  # the schema wants one To
    assert any(f.code == "EDX103" for f in vbdt.check(directive))


def test_due_date_before_promulgation(directive: vbdt.Document) -> None:
    directive.due_date = date(2020, 1, 1)
    assert "before PromulgationDate" in findings_for(vbdt.write(directive))["EDX203"].message


def test_rejection_needs_a_reason() -> None:
    data = (INTEROP / "status-02-rejected.edxml").read_bytes()
    data = data.replace("Từ chối không tiếp nhận văn bản điện tử".encode(), b"")
    data = data.replace("Văn thư - Phòng Văn thư - Lưu trữ: ".encode(), b"")
    report = vbdt.validate(data, lenient=True)
    assert any(f.code == "EDX402" for f in report.errors)


def test_revocation_must_name_its_document(directive: vbdt.Document) -> None:
    directive.business.doc_type = vbdt.BusinessDocType.REVOKE
    assert "EDX501" in findings_for(vbdt.write(directive))
    directive.business.document_id = "000.00.00.H14,2026/11/01,03/CT-UBND"
    assert "EDX501" not in findings_for(vbdt.write(directive))


def test_replacement_must_list_replaced_documents(directive: vbdt.Document) -> None:
    directive.business.doc_type = vbdt.BusinessDocType.REPLACE
    assert "EDX502" in findings_for(vbdt.write(directive))


def test_out_of_order_header_is_a_quirk(directive: vbdt.Document) -> None:
    data = vbdt.write(directive)
    subject = data[data.index(b"<edXML:Subject>") : data.index(b"</edXML:Subject>") + len(b"</edXML:Subject>")]
    data = data.replace(subject, b"", 1).replace(b"<edXML:DocumentId>", subject + b"<edXML:DocumentId>", 1)
    strict = vbdt.validate(data)
    lenient = vbdt.validate(data, lenient=True)
    assert any(f.code == "EDX902" for f in strict.errors)
    assert lenient.valid and any(f.code == "EDX902" for f in lenient.warnings)
    assert lenient.package == directive


def test_every_code_is_documented() -> None:
    import inspect

    from vbdt.edxml import building, quirks, reader, rules, schemas, signature_quirks, walker

    modules = (building, quirks, reader, rules, schemas, signature_quirks, walker)
    source = "".join(inspect.getsource(m) for m in modules)
    import re

    used = set(re.findall(r'"(EDX\d{3})"', source))
    assert used <= set(vbdt.CODES)


def test_validation_error_lists_every_finding(directive: vbdt.Document) -> None:
    directive.due_date = date(2020, 1, 1)
    directive.code = vbdt.Code(number="x1", notation="CT-UBND")
    with pytest.raises(vbdt.ValidationError) as info:
        vbdt.read(vbdt.write(directive))
    assert {"EDX202", "EDX203"} <= {f.code for f in info.value.errors}
    assert "more errors" in str(info.value)
