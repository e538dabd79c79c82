"""Issue 10: real-world edXML variants.

Each variant is made by mutating the tree of a clean written package, as a sender's system would
have written it. Lenient reading gives the model the clean file gives, with a warning that names the
variant; strict reading refuses it with that code as an error; and the lenient model written again
reads strictly (or, where the variant is information the standard cannot express, reads back the
same with only that warning). After every refusal the next good document still reads.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime

import pytest
from lxml import etree

import vbdt
from vbdt.edxml.organid import OrganId
from vbdt.edxml.xmlparse import EDXML_NS

NS = {"e": EDXML_NS}
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
TODAY = date(2026, 11, 23)


def e(name: str) -> str:
    return f"{{{EDXML_NS}}}{name}"


def clean_document() -> vbdt.Document:
    return vbdt.Document(
        sender=vbdt.Organization(organ_id="000.00.00.H14", organ_name="UBND Tỉnh Cao Bằng"),
        recipients=[
            vbdt.Organization(organ_id="000.00.01.H14", organ_name="UBND Phường Thục Phán"),
            vbdt.Organization(organ_id="000.00.00.G12", organ_name="Bộ Tài chính"),
        ],
        code=vbdt.Code(number="05", notation="CT-UBND"),
        promulgation=vbdt.PromulgationInfo(place="Cao Bằng", date=date(2026, 11, 20)),
        document_type=vbdt.DocumentType(type=1, type_detail=3, type_name="Chỉ thị"),
        subject="Về việc tăng cường công tác văn thư",
        content="Nội dung",
        due_date=date(2026, 12, 1),
        to_places=["Như trên", "Lưu: VT"],
        trace=[vbdt.TraceHeader(organ_id="000.00.00.H14", timestamp=datetime(2026, 11, 20, 0, 0, 0))],
        attachments=[vbdt.Attachment.from_bytes("chi-thi.pdf", PDF, content_id="cid:1", description="Chỉ thị")],
    )


def clean_status() -> vbdt.StatusMessage:
    return vbdt.StatusMessage(
        sender=vbdt.Organization(organ_id="000.00.01.H14", organ_name="UBND Phường Thục Phán"),
        response_for=vbdt.ResponseFor(organ_id="000.00.00.H14", document_id="000.00.00.H14,2026/11/20,05/CT-UBND"),
        staff_info=vbdt.StaffInfo(staff="Văn thư"),
        status_code=vbdt.StatusCode.ARRIVED,
        timestamp=datetime(2026, 11, 20, 9, 30, 0),
    )


def tree(package: vbdt.Package) -> etree._Element:
    return etree.fromstring(vbdt.write(package))


def to_bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.find(path, NS)
    assert found is not None, path
    return found


MESSAGE = "e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader"
TRACE = "e:edXMLEnvelope/e:edXMLHeader/e:TraceHeaderList"
ATTACHMENT = "e:AttachmentEncoded/e:Attachment"


def move_to_end(root: etree._Element, path: str) -> None:
    element = one(root, path)
    parent = element.getparent()
    assert parent is not None
    parent.append(element)


def remove(root: etree._Element, path: str) -> None:
    element = one(root, path)
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)


def add_leaf(parent: etree._Element, name: str, text: str | None, index: int | None = None) -> etree._Element:
    element = etree.Element(e(name))
    element.text = text
    if index is None:
        parent.append(element)
    else:
        parent.insert(index, element)
    return element


def zip_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# The variants: how to make each from a clean tree, the code it must raise, the model it means


@dataclass
class Variant:
    code: str
    mutate: Callable[[etree._Element], None]
    expected: Callable[[], vbdt.Package] = clean_document
    status: bool = False
    # False where the variant is information the standard cannot express (a tax code, an opaque id):
    # written again it keeps its meaning, and so its warning.
    round_trip_strict: bool = True


def _trace_hop_without_organ(root: etree._Element) -> None:
    hop = etree.SubElement(one(root, TRACE), e("TraceHeader"))
    add_leaf(hop, "Timestamp", "2026/11/20 10:00:00")


def _trace_hop(organ: str) -> Callable[[etree._Element], None]:
    def mutate(root: etree._Element) -> None:
        hop = etree.Element(e("TraceHeader"))
        add_leaf(hop, "OrganId", organ)
        add_leaf(hop, "Timestamp", "2026/11/20 10:00:00")
        one(root, TRACE).insert(1, hop)

    return mutate


def _with_hop(organ: str) -> Callable[[], vbdt.Package]:
    def expected() -> vbdt.Package:
        doc = clean_document()
        doc.trace.append(vbdt.TraceHeader(organ_id=OrganId.lenient(organ), timestamp=datetime(2026, 11, 20, 10, 0, 0)))
        return doc

    return expected


def _tax_code_sender(root: etree._Element) -> None:
    one(root, f"{MESSAGE}/e:From/e:OrganId").text = "0201001234"
    one(root, f"{MESSAGE}/e:DocumentId").text = "0201001234,2026/11/20,05/CT-UBND"


def _tax_code_expected() -> vbdt.Package:
    doc = clean_document()
    doc.sender = vbdt.Organization(organ_id=OrganId.lenient("0201001234"), organ_name="UBND Tỉnh Cao Bằng")
    doc.document_id = "0201001234,2026/11/20,05/CT-UBND"
    doc.trace = []  # the sender's hop would not be this sender's: see mutate
    return doc


def _tax_code_sender_untraced(root: etree._Element) -> None:
    _tax_code_sender(root)
    remove(root, f"{TRACE}/e:TraceHeader")


def _bare_ministry_code(root: etree._Element) -> None:
    to = one(root, f"{MESSAGE}/e:To[2]")
    bare = etree.fromstring(etree.tostring(to))
    one(bare, "e:OrganId").text = "G12"
    to.addnext(bare)


def _bare_expected() -> vbdt.Package:
    doc = clean_document()
    doc.recipients.append(doc.recipients[1])
    return doc


def _null_recipient(root: etree._Element) -> None:
    one(root, f"{MESSAGE}/e:To[2]/e:OrganId").text = "null"


def _without_second_recipient() -> vbdt.Package:
    doc = clean_document()
    doc.recipients = doc.recipients[:1]
    return doc


def _business_first(root: etree._Element) -> None:
    trace_list = one(root, TRACE)
    trace_list.insert(0, one(trace_list, "e:Bussiness"))


def _no_trace_list(root: etree._Element) -> None:
    remove(root, TRACE)


def _untraced() -> vbdt.Package:
    doc = clean_document()
    doc.trace = []
    return doc


def _soap_attributes(root: etree._Element) -> None:
    trace_list = one(root, TRACE)
    trace_list.set("id", "TraceHeaderList")
    trace_list.set("version", "1.0")
    trace_list.set("{http://schemas.xmlsoap.org/soap/envelope/}mustUnderstand", "0")
    trace_list.set("{http://schemas.xmlsoap.org/soap/envelope/}actor", "http://schemas.xmlsoap.org/soap/actor/next")


def _date_only_timestamp(root: etree._Element) -> None:
    one(root, f"{TRACE}/e:TraceHeader/e:Timestamp").text = "2026/11/20"


def _no_organ_name(root: etree._Element) -> None:
    remove(root, f"{MESSAGE}/e:From/e:OrganName")
    remove(root, f"{MESSAGE}/e:To[1]/e:OrganName")


def _nameless() -> vbdt.Package:
    doc = clean_document()
    doc.sender.organ_name = None
    doc.recipients[0].organ_name = None
    return doc


def _no_organ_names(root: etree._Element) -> None:
    for name in ("From", "To"):
        for element in root.findall(f"{MESSAGE}/e:{name}/e:OrganName", NS):
            remove_element(element)


def _unnamed() -> vbdt.Package:
    doc = clean_document()
    return doc.model_copy(update={
        "sender": doc.sender.model_copy(update={"organ_name": None}),
        "recipients": [r.model_copy(update={"organ_name": None}) for r in doc.recipients],
    })


def remove_element(element: etree._Element) -> None:
    parent = element.getparent()
    assert parent is not None
    parent.remove(element)


def _empty_parts(root: etree._Element) -> None:
    message = one(root, MESSAGE)
    one(message, "e:ToPlaces").addprevious(etree.Element(e("ResponseFor")))  # <ResponseFor/>
    add_leaf(one(message, "e:From"), "OrganAdd", None)
    one(message, "e:DueDate").text = None


def _without_due_date() -> vbdt.Package:
    doc = clean_document()
    doc.due_date = None
    return doc


def _minimal_header(root: etree._Element) -> None:
    for name in ("PromulgationInfo", "DocumentType", "Content", "DueDate", "OtherInfo", "ToPlaces"):
        remove(root, f"{MESSAGE}/e:{name}")


def _minimal_expected() -> vbdt.Package:
    doc = clean_document()
    return doc.model_copy(
        update={
            "promulgation": vbdt.PromulgationInfo(date=date(2026, 11, 20)),
            "document_type": vbdt.DocumentType(),
            "content": None,
            "due_date": None,
            "to_places": [],
        }
    )


def _document_id_last(root: etree._Element) -> None:
    move_to_end(root, f"{MESSAGE}/e:DocumentId")


def _document_id_third(root: etree._Element) -> None:
    # the Java library writes From, To, DocumentId, then the other To elements
    one(root, f"{MESSAGE}/e:To[1]").addnext(one(root, f"{MESSAGE}/e:DocumentId"))


def _to_places_before_other_info(root: etree._Element) -> None:
    message = one(root, MESSAGE)
    one(message, "e:OtherInfo").addprevious(one(message, "e:ToPlaces"))


def _status_dotnet_order(root: etree._Element) -> None:
    message = one(root, MESSAGE)
    message.insert(0, one(message, "e:ResponseFor"))
    move_to_end(root, f"{MESSAGE}/e:StaffInfo")


def _attachment_children_reversed(root: etree._Element) -> None:
    attachment = one(root, ATTACHMENT)
    for child in reversed(list(attachment)):
        attachment.append(child)


def _day_first(root: etree._Element) -> None:
    one(root, f"{MESSAGE}/e:PromulgationInfo/e:PromulgationDate").text = "20/11/2026"
    one(root, f"{MESSAGE}/e:DueDate").text = "1/12/2026"


def _status_without_zero(root: etree._Element) -> None:
    one(root, f"{MESSAGE}/e:StatusCode").text = "1"


def _bare_content_ids(root: etree._Element) -> None:
    one(root, "e:edXMLEnvelope/e:edXMLBody/e:edXMLManifest/e:Reference/e:ContentId").text = "1"
    one(root, f"{ATTACHMENT}/e:ContentId").text = "1"


def _unprefixed_attachment_children(root: etree._Element) -> None:
    # only ContentTransferEncoded carries the edXML prefix (with its own declaration); the rest is
    # in no namespace, as one vendor's serializer writes it
    for child in one(root, ATTACHMENT):
        name = etree.QName(child).localname
        if name != "ContentTransferEncoded":
            child.tag = name


def _signature_without_namespace(root: etree._Element) -> None:
    header = one(root, "e:edXMLEnvelope/e:edXMLHeader")
    signature = etree.SubElement(header, e("Signature"))
    info = etree.SubElement(signature, e("SignedInfo"))
    etree.SubElement(info, e("SignatureMethod"), Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    add_leaf(signature, "SignatureValue", "AAAA")


def _empty_digital_signature(root: etree._Element) -> None:
    add_leaf(one(root, "e:edXMLEnvelope/e:edXMLHeader"), "DigitalSignature", None)


def _sdk_placeholder(root: etree._Element) -> None:
    ds = "http://www.w3.org/2000/09/xmldsig#"
    header = one(root, "e:edXMLEnvelope/e:edXMLHeader")
    signature = etree.SubElement(header, f"{{{ds}}}Signature", nsmap={"ds": ds})
    info = etree.SubElement(signature, f"{{{ds}}}SignedInfo")
    reference = etree.SubElement(info, f"{{{ds}}}Reference", URI="")
    etree.SubElement(reference, f"{{{ds}}}DigestValue").text = "FwgIqsSYJshUS2+wlOM61L+q7Aw="
    etree.SubElement(signature, f"{{{ds}}}SignatureValue").text = "GbVb8n9+qFxz466Ag0sbpVdLPs2R0+9JBekp12UyarAZjoG0W/kP"
    key = etree.SubElement(etree.SubElement(signature, f"{{{ds}}}KeyInfo"), f"{{{ds}}}X509Data")
    etree.SubElement(key, f"{{{ds}}}X509Certificate").text = "MIIFqTCCBJG"


VARIANTS: dict[str, Variant] = {
    "no-organ-name": Variant("EDX106", _no_organ_names, _unnamed, round_trip_strict=False),
    "tax-code-sender": Variant("EDX107", _tax_code_sender_untraced, _tax_code_expected, round_trip_strict=False),
    "hub-id-in-trace": Variant("EDX107", _trace_hop("vxp.saas.03"), _with_hop("vxp.saas.03"), round_trip_strict=False),
    "axis-hop": Variant("EDX107", _trace_hop("02.29.W00"), _with_hop("02.29.W00"), round_trip_strict=False),
    "bare-ministry-code": Variant("EDX107", _bare_ministry_code, _bare_expected),
    "null-organ-id": Variant("EDX108", _null_recipient, _without_second_recipient),
    "trace-header-without-organ-id": Variant("EDX511", _trace_hop_without_organ),
    "business-before-trace-headers": Variant("EDX902", _business_first),
    "no-trace-header-list": Variant("EDX512", _no_trace_list, _untraced),
    "no-business": Variant("EDX512", lambda root: remove(root, f"{TRACE}/e:Bussiness")),
    "soap-attributes-on-trace-list": Variant("EDX510", _soap_attributes),
    "timestamp-from-a-date": Variant("EDX207", _date_only_timestamp),
    "empty-elements": Variant("EDX910", _empty_parts, _without_due_date),
    "minimal-header": Variant("EDX911", _minimal_header, _minimal_expected),
    "document-id-third": Variant("EDX902", _document_id_third),
    "document-id-last": Variant("EDX902", _document_id_last),
    "to-places-before-other-info": Variant("EDX902", _to_places_before_other_info),
    "status-dotnet-order": Variant("EDX902", _status_dotnet_order, clean_status, status=True),
    "attachment-children-in-any-order": Variant("EDX902", _attachment_children_reversed),
    "dates-day-first": Variant("EDX206", _day_first),
    "status-code-without-zero": Variant("EDX403", _status_without_zero, clean_status, status=True),
    "content-id-without-cid": Variant("EDX305", _bare_content_ids),
    "only-content-prefixed": Variant("EDX909", _unprefixed_attachment_children),
    "signature-without-namespace": Variant("EDX901", _signature_without_namespace),
    "empty-digital-signature": Variant("EDX908", _empty_digital_signature),
    "sdk-placeholder-signature": Variant("EDX907", _sdk_placeholder),
}


def variant_bytes(variant: Variant) -> bytes:
    root = tree(clean_status() if variant.status else clean_document())
    variant.mutate(root)
    return to_bytes(root)


@pytest.mark.parametrize("name", VARIANTS)
def test_lenient_reads_the_variant_to_the_clean_model_with_a_named_warning(name: str) -> None:
    variant = VARIANTS[name]
    report = vbdt.validate(variant_bytes(variant), lenient=True, today=TODAY)
    assert report.valid, [f.one_line() for f in report.errors]
    assert variant.code in {f.code for f in report.warnings}, [f.one_line() for f in report.findings]
    assert report.package == variant.expected()


@pytest.mark.parametrize("name", VARIANTS)
def test_strict_refuses_the_variant_with_the_named_error(name: str) -> None:
    variant = VARIANTS[name]
    with pytest.raises(vbdt.ValidationError) as info:
        vbdt.read(variant_bytes(variant))
    assert variant.code in {f.code for f in info.value.errors}
    # the victim keeps working: the next clean package reads
    clean = clean_status() if variant.status else clean_document()
    assert vbdt.read(vbdt.write(clean)) == clean


@pytest.mark.parametrize("name", VARIANTS)
def test_round_trip_writes_the_standard_form(name: str) -> None:
    variant = VARIANTS[name]
    lenient = vbdt.read_lenient(variant_bytes(variant)).package
    written = vbdt.write(lenient)
    if variant.round_trip_strict:
        assert vbdt.read(written) == lenient
    else:
        again = vbdt.validate(written, lenient=True, today=TODAY)
        assert again.package == lenient
        assert {f.code for f in again.warnings} == {variant.code}
        assert {f.code for f in vbdt.validate(written).errors} == {variant.code}


# --------------------------------------------------------------------------------------------
# Values that are wrong rather than unusual: reported, never a crash


def _doc_with(mutate: Callable[[etree._Element], None]) -> bytes:
    root = tree(clean_document())
    mutate(root)
    return to_bytes(root)


@pytest.mark.parametrize(
    ("code", "mutate"),
    [
        ("EDX110", lambda r: setattr(one(r, f"{MESSAGE}/e:DocumentId"), "text", "6f1c2b1e-8f7a-4c55-9a3e-0b6d2f6a9c11")),
        ("EDX110", lambda r: setattr(one(r, f"{MESSAGE}/e:DocumentId"), "text", "GW-2026-000123")),
        ("EDX203", lambda r: setattr(one(r, f"{MESSAGE}/e:DueDate"), "text", "2026/11/01")),
        ("EDX208", lambda r: setattr(one(r, f"{MESSAGE}/e:DocumentType/e:Type"), "text", "7")),
    ],
    ids=["uuid-document-id", "gw-document-id", "due-before-promulgation", "document-type-out-of-range"],
)
def test_unusual_values_warn_when_lenient_and_fail_when_strict(code: str, mutate: Callable[[etree._Element], None]) -> None:
    data = _doc_with(mutate)
    lenient = vbdt.validate(data, lenient=True, today=TODAY)
    assert lenient.valid and code in {f.code for f in lenient.warnings}
    assert code in {f.code for f in vbdt.validate(data, today=TODAY).errors}


def test_impossible_date_is_reported_not_crashed_on() -> None:
    data = _doc_with(lambda r: setattr(one(r, f"{MESSAGE}/e:PromulgationInfo/e:PromulgationDate"), "text", "2014/02/30"))
    for lenient in (True, False):
        report = vbdt.validate(data, lenient=lenient)
        finding = next(f for f in report.errors if f.code == "EDX201")
        assert "2014/02/30" in finding.message and finding.line
    with pytest.raises(vbdt.ValidationError):
        vbdt.read_lenient(data)
    assert vbdt.read(vbdt.write(clean_document())) == clean_document()


def test_unknown_status_code_is_reported() -> None:
    root = tree(clean_status())
    one(root, f"{MESSAGE}/e:StatusCode").text = "09"
    report = vbdt.validate(to_bytes(root), lenient=True)
    assert report.package is None and any("09" in f.message for f in report.errors)


# --------------------------------------------------------------------------------------------
# Attachments: the real type from the bytes, the one file of a sender's ZIP, a bomb refused


def _with_attachment(attachment: vbdt.Attachment) -> bytes:
    doc = clean_document()
    doc.attachments = [attachment]
    return vbdt.write(doc)


def test_content_type_that_lies_is_reported_and_the_real_type_given() -> None:
    archive = zip_of("3b9f1c2e-5d4a-4f7e-9c1b-2a6d8e0f4b13.pdf", PDF)
    for label in ("application/pdf", "text/plain"):
        data = _with_attachment(vbdt.Attachment.from_bytes("cong-van.pdf", archive, content_id="cid:1", content_type=label))
        report = vbdt.validate(data, lenient=True, today=TODAY)
        finding = next(f for f in report.warnings if f.code == "EDX307")
        assert label in finding.message and "application/zip" in finding.message
        assert "EDX307" in {f.code for f in vbdt.validate(data, today=TODAY).errors}
        assert isinstance(report.package, vbdt.Document)
        assert report.package.attachments[0].real_type == "application/zip"


def test_invented_mime_type_is_reported() -> None:
    data = _with_attachment(vbdt.Attachment.from_bytes("bao-cao.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), content_id="cid:1", content_type="application/doc"))
    report = vbdt.validate(data, lenient=True, today=TODAY)
    finding = next(f for f in report.warnings if f.code == "EDX308")
    assert "application/doc" in finding.message and "application/x-ole-storage" in finding.message
    assert "EDX308" in {f.code for f in vbdt.validate(data, today=TODAY).errors}


def test_docx_is_told_from_a_zip() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    attachment = vbdt.Attachment.from_bytes("to-trinh.docx", buffer.getvalue(), content_id="cid:1")
    assert attachment.real_type == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    report = vbdt.validate(_with_attachment(attachment), today=TODAY)
    assert not {"EDX307", "EDX308"} & {f.code for f in report.findings}


def test_one_file_zip_gives_its_file_and_name() -> None:
    inner_name = "3b9f1c2e-5d4a-4f7e-9c1b-2a6d8e0f4b13.pdf"
    data = _with_attachment(vbdt.Attachment.from_bytes("van-ban.zip", zip_of(inner_name, PDF), content_id="cid:1"))
    report = vbdt.validate(data, today=TODAY)
    assert report.valid
    assert inner_name in next(f for f in report.warnings if f.code == "EDX309").message
    assert isinstance(report.package, vbdt.Document)
    assert report.package.attachments[0].unzip() == (inner_name, PDF)


def test_zip_bomb_is_an_error_and_the_reader_keeps_working() -> None:
    bomb = vbdt.Attachment.from_bytes("bom.zip", zip_of("a.pdf", bytes(20 * 1024 * 1024)), content_id="cid:1")
    assert bomb.size < 100_000
    with pytest.raises(vbdt.ArchiveTooLarge, match="max_unzipped_bytes"):
        bomb.unzip(replace(vbdt.DEFAULT_LIMITS, max_unzipped_bytes=1024 * 1024))
    # a header that lies about the size stops at the bound too
    lying = bytearray(zip_of("a.pdf", bytes(4 * 1024 * 1024)))
    for signature in (b"PK\x03\x04", b"PK\x01\x02"):
        at = lying.index(signature)
        offset = at + (22 if signature == b"PK\x03\x04" else 24)
        lying[offset : offset + 4] = (100).to_bytes(4, "little")
    with pytest.raises(vbdt.AttachmentError):
        vbdt.Attachment.from_bytes("x.zip", bytes(lying), content_id="cid:1").unzip(replace(vbdt.DEFAULT_LIMITS, max_unzipped_bytes=1024))
    good = vbdt.Attachment.from_bytes("ok.zip", zip_of("ok.pdf", PDF), content_id="cid:1")
    assert good.unzip() == ("ok.pdf", PDF)


def test_not_a_zip_cannot_be_unzipped() -> None:
    with pytest.raises(vbdt.AttachmentError):
        vbdt.Attachment.from_bytes("a.pdf", PDF).unzip()


# --------------------------------------------------------------------------------------------
# Bytes


def test_line_ends_and_trailing_newline_change_nothing() -> None:
    data = vbdt.write(clean_document())
    for variant in (data.replace(b"\n", b"\r\n"), data + b"\n\n", b"\xef\xbb\xbf" + data):
        report = vbdt.validate(variant, today=TODAY)
        assert report.valid and report.package == clean_document()


def test_bytes_before_the_declaration() -> None:
    data = b"\r\n--boundary\r\n" + vbdt.write(clean_document())
    report = vbdt.validate(data, lenient=True, today=TODAY)
    assert report.valid and report.package == clean_document()
    assert "EDX912" in {f.code for f in report.warnings}
    with pytest.raises(vbdt.MalformedXml, match="EDX912"):
        vbdt.read(data)
    assert vbdt.read(vbdt.write(clean_document())) == clean_document()


def _undeclared_xlink() -> bytes:
    data = vbdt.write(clean_document())
    return data.replace(b"<edXML:Reference>", b'<edXML:Reference xlink:href="cid:1">', 1)


def test_undeclared_xlink_prefix() -> None:
    data = _undeclared_xlink()
    report = vbdt.validate(data, lenient=True, today=TODAY)
    assert report.valid, [f.one_line() for f in report.errors]
    assert report.package == clean_document() and "EDX913" in {f.code for f in report.warnings}
    with pytest.raises(vbdt.MalformedXml, match="EDX913"):
        vbdt.read(data)
    declared = data.replace(b"<edXML:Reference ", b'<edXML:Reference xmlns:xlink="http://www.w3.org/1999/xlink" ', 1)
    assert vbdt.read(declared) == clean_document()


@pytest.mark.parametrize(
    "body",
    [b'{"error": "not found"}', b"<html><body>502 Bad Gateway</body></html>", b"%PDF-1.7\n", b"PK\x03\x04\x14\x00"],
    ids=["json", "html", "pdf", "zip"],
)
def test_a_body_that_is_not_edxml_is_refused_with_a_reason(body: bytes) -> None:
    for lenient in (True, False):
        with pytest.raises(vbdt.XmlError) as info:
            vbdt.validate(body, lenient=lenient)
        assert "edXML" in str(info.value) or "not XML" in str(info.value)
    assert vbdt.read(vbdt.write(clean_document())) == clean_document()


# --------------------------------------------------------------------------------------------
# Issue 9 point 5: text read as the signature sees it; identifiers matched whole


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (f"{MESSAGE}/e:DocumentId", "000.00.00.H14,2026/11/20,05/CT-UBND"),
        (f"{MESSAGE}/e:From/e:OrganId", "000.00.00.H14"),
        (f"{MESSAGE}/e:Code/e:CodeNumber", "05"),
        (f"{MESSAGE}/e:Code/e:CodeNotation", "CT-UBND"),
    ],
)
def test_a_comment_inside_a_value_changes_nothing(path: str, text: str) -> None:
    root = tree(clean_document())
    element = one(root, path)
    assert element.text == text
    element.text = text[:4]
    comment = etree.Comment(" tách ")
    comment.tail = text[4:]
    element.append(comment)
    data = to_bytes(root)
    assert vbdt.read(data) == clean_document()
    assert vbdt.validate(data, today=TODAY).findings == vbdt.validate(vbdt.write(clean_document()), today=TODAY).findings


def test_a_comment_does_not_hide_a_wrong_document_id() -> None:
    root = tree(clean_document())
    element = one(root, f"{MESSAGE}/e:DocumentId")
    element.text = "000.00.00.H14,2026/11/20,05/CT-UBND"
    comment = etree.Comment("x")
    comment.tail = "9"  # canonical text: ...05/CT-UBND9, which is not the Code
    element.append(comment)
    report = vbdt.validate(to_bytes(root), today=TODAY)
    assert "EDX113" in {f.code for f in report.errors}


def test_trailing_newline_in_an_identifier_is_refused() -> None:
    with pytest.raises(vbdt.InvalidOrganId):
        OrganId("000.00.00.G12\n")
    with pytest.raises(vbdt.InvalidOrganId):
        OrganId.lenient("000.00.00.G12\n")
    from vbdt.edxml.rules import parse_document_id

    assert parse_document_id("000.00.00.G12,2026/11/20,05/CT") == ("000.00.00.G12", "2026/11/20", "05/CT")
    assert parse_document_id("000.00.00.G12,2026/11/20,05/CT\n\n,x") is None
    root = tree(clean_document())
    one(root, f"{MESSAGE}/e:From/e:OrganId").text = "000.00.00.H14\n"
    assert not vbdt.validate(to_bytes(root), today=TODAY).valid


# --------------------------------------------------------------------------------------------
# Attachment names unique; Limits.max_attachments


def test_attachment_names_must_be_unique() -> None:
    doc = clean_document()
    doc.attachments.append(vbdt.Attachment.from_bytes("chi-thi.pdf", PDF, content_id="cid:2"))
    report = vbdt.validate(vbdt.write(doc), today=TODAY)
    finding = next(f for f in report.errors if f.code == "EDX306")
    assert "chi-thi.pdf" in finding.message and finding.path.endswith("Attachment[2]/AttachmentName") and finding.line


def test_too_many_attachments_is_refused_by_the_limit() -> None:
    doc = clean_document()
    doc.attachments = [vbdt.Attachment.from_bytes(f"{i}.pdf", PDF, content_id=f"cid:{i}") for i in range(5)]
    data = vbdt.write(doc)
    limits = replace(vbdt.DEFAULT_LIMITS, max_attachments=4)
    for lenient in (True, False):
        with pytest.raises(vbdt.TooManyAttachments, match="max_attachments = 4"):
            vbdt.validate(data, lenient=lenient, limits=limits)
    assert vbdt.read(data) == doc
    assert vbdt.read(vbdt.write(clean_document()), limits=limits) == clean_document()


def test_a_comment_inside_a_repaired_value_is_read_as_the_signature_sees_it() -> None:
    root = tree(clean_document())
    element = one(root, f"{MESSAGE}/e:PromulgationInfo/e:PromulgationDate")
    element.text = "20/11"
    comment = etree.Comment("x")
    comment.tail = "/2026"
    element.append(comment)
    report = vbdt.validate(to_bytes(root), lenient=True, today=TODAY)
    assert report.valid and report.package == clean_document()
    assert "EDX206" in {f.code for f in report.warnings}
