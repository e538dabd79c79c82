from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

import vbdt
from vbdt.edxml.reader import MESSAGE_HEADER_ORDER
from vbdt.edxml.xmlparse import EDXML_NS


def test_writer_is_deterministic_and_utf8(directive: vbdt.Document) -> None:
    first = vbdt.write(directive)
    assert first == vbdt.write(directive)
    assert first.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Về việc tăng cường".encode() in first
    assert vbdt.read(first) == directive


def test_layout_matches_the_samples(directive: vbdt.Document) -> None:
    root = etree.fromstring(vbdt.write(directive))
    ns = {"e": EDXML_NS}
    assert root.tag == f"{{{EDXML_NS}}}edXML"
    message = root.find("e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader", ns)
    names = [etree.QName(c).localname for c in message]
    order = [MESSAGE_HEADER_ORDER.index(n) for n in names]
    assert order == sorted(order)
    assert root.find("e:edXMLEnvelope/e:edXMLBody/e:edXMLManifest", ns).get("version") == "1.0"
    assert len(root.findall("e:AttachmentEncoded/e:Attachment", ns)) == 1


def test_text_is_escaped_never_concatenated(directive: vbdt.Document) -> None:
    hostile = "</edXML:Subject><edXML:Injected>&amp; \"quoted\" ]]> <!-- x -->"
    directive.subject = hostile
    data = vbdt.write(directive)
    assert b"<edXML:Injected>" not in data
    assert vbdt.read(data).subject == hostile  # type: ignore[union-attr]


def test_status_message_round_trip() -> None:
    status = vbdt.StatusMessage(
        sender=vbdt.Organization(organ_id="000.00.01.H54", organ_name="UBND Thành phố Thái Bình"),
        response_for=vbdt.ResponseFor(
            organ_id="000.00.00.H54",
            code=vbdt.Code(number="05", notation="CT-UBND"),
            promulgation_date=date(2026, 11, 23),
            document_id="000.00.00.H54,2026/11/23,05/CT-UBND",
        ),
        status_code=vbdt.StatusCode.REJECTED,
        description="Văn bản gửi nhầm đơn vị",
        timestamp="2026-11-23T09:00:00+07:00",
        staff_info=vbdt.StaffInfo(staff="Văn thư"),
    )
    assert vbdt.read(vbdt.write(status)) == status


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"), min_size=1, max_size=30
)
_organ = st.builds(
    lambda a, b, c, letter, n: f"{a:03d}.{b:02d}.{c:02d}.{letter}{n:02d}" if (a == 0 or b) and (b == 0 or c) else f"000.00.{c:02d}.{letter}{n:02d}",
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 20), st.sampled_from("GHK"), st.integers(1, 99),
)


@st.composite
def documents(draw: st.DrawFn) -> vbdt.Document:
    recipients = draw(st.lists(_organ, min_size=1, max_size=4))
    attachments = [
        vbdt.Attachment.from_bytes(f"file{i}.pdf", draw(st.binary(max_size=200)), content_id=f"cid:{i}",
                                   description=draw(st.none() | _text))
        for i in range(draw(st.integers(0, 3)))
    ]
    return vbdt.Document(
        sender=vbdt.Organization(organ_id=draw(_organ), organ_name=draw(st.none() | _text), email=draw(st.none() | _text)),
        recipients=[vbdt.Organization(organ_id=r, organ_add=draw(st.none() | _text)) for r in recipients],
        code=vbdt.Code(number=str(draw(st.integers(1, 9999))), notation=draw(_text.filter(lambda s: "," not in s))),
        promulgation=vbdt.PromulgationInfo(place=draw(st.none() | _text), date=draw(st.dates(date(2000, 1, 1), date(2030, 12, 31)))),
        subject=draw(_text),
        content=draw(st.none() | _text),
        due_date=draw(st.none() | st.dates(date(2000, 1, 1), date(2030, 12, 31))),
        other_info=vbdt.OtherInfo(
            priority=draw(st.sampled_from(vbdt.Priority)),
            page_amount=draw(st.none() | st.integers(0, 500)),
            direction=draw(st.none() | st.booleans()),
            appendixes=draw(st.lists(_text, max_size=3)),
        ),
        steering_type=draw(st.none() | st.sampled_from(vbdt.SteeringType)),
        to_places=draw(st.lists(_text, max_size=3)),
        business=vbdt.Business(doc_type=draw(st.sampled_from(vbdt.BusinessDocType)), paper=draw(st.booleans()),
                               reason=draw(st.none() | _text)),
        attachments=attachments,
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_round_trip(doc: vbdt.Document) -> None:
    data = vbdt.write(doc)
    report = vbdt.validate(data)
    assert report.package == doc
    assert not [f for f in report.findings if f.code == "EDX001"]  # the schema accepts what we write
    assert vbdt.write(report.package) == data


def test_written_form_suits_readers_that_look_up_prefixed_names(directive: vbdt.Document) -> None:
    """Every element carries the edXML: prefix, and the orders are those of the SDK samples (order.py)."""
    from vbdt.edxml import order

    status = vbdt.StatusMessage(
        sender=vbdt.Organization(organ_id="000.00.01.H54", organ_name="UBND Thành phố Thái Bình"),
        response_for=vbdt.ResponseFor(organ_id="000.00.00.H54", document_id="000.00.00.H54,2026/11/23,05/CT-UBND"),
        staff_info=vbdt.StaffInfo(staff="Văn thư"),
        status_code=vbdt.StatusCode.ARRIVED,
        timestamp="2026-11-23T09:00:00+07:00",
    )
    for package in (directive, status):
        data = vbdt.write(package)
        root = etree.fromstring(data)
        assert root.nsmap == {"edXML": EDXML_NS}  # no default namespace: a prefix on every element
        assert all(e.prefix == "edXML" for e in root.iter() if isinstance(e.tag, str))
        message = root.find("e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader", {"e": EDXML_NS})
        expected = order.STATUS_HEADER_ORDER if package is status else order.MESSAGE_HEADER_ORDER
        names = [etree.QName(c).localname for c in message]
        assert [expected.index(n) for n in names] == sorted(expected.index(n) for n in names)
    assert b"<edXML:StatusCode>01</edXML:StatusCode>" in vbdt.write(status)  # zero-padded
    assert b"<edXML:Timestamp>2026/11/23 09:00:00</edXML:Timestamp>" in vbdt.write(status)
    root = etree.fromstring(vbdt.write(directive))
    attachment = root.find("e:AttachmentEncoded/e:Attachment", {"e": EDXML_NS})
    assert [etree.QName(c).localname for c in attachment] == [
        n for n in order.ATTACHMENT_ORDER if attachment.find(f"{{{EDXML_NS}}}{n}") is not None
    ]
    trace = root.find("e:edXMLEnvelope/e:edXMLHeader/e:TraceHeaderList", {"e": EDXML_NS})
    names = [etree.QName(c).localname for c in trace]
    assert names == sorted(names, key=order.TRACE_LIST_ORDER.index)
    date_text = root.find("e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader/e:PromulgationInfo/e:PromulgationDate", {"e": EDXML_NS}).text
    assert date_text == f"{directive.promulgation.date:%Y/%m/%d}"


def test_the_writer_emits_no_empty_optional_element(directive: vbdt.Document) -> None:
    """What the writer emits reads strictly with no finding about its form (EDX9xx, EDX910)."""
    directive.content = ""
    directive.due_date = None
    report = vbdt.validate(vbdt.write(directive))
    assert not [f for f in report.findings if f.code.startswith("EDX9")]


_traces = st.lists(st.builds(lambda organ, minute: vbdt.TraceHeader(organ_id=organ, timestamp=f"2026-11-23T09:{minute:02d}:00+07:00"),
                             _organ, st.integers(0, 59)), max_size=2)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), _traces, _organ)
def test_a_hop_added_to_the_tree_is_the_package_written_with_it(doc: vbdt.Document, trace: list[vbdt.TraceHeader],
                                                               me: str) -> None:
    """add_trace (the sender's hop, added without writing the document a second time) gives the
    very bytes of the package written with the hop in its trace: with or without a trace before,
    for documents (a Bussiness after the trace) and status messages (no TraceHeaderList before)."""
    from vbdt.edxml.writer import add_trace, serialize, to_tree

    doc = vbdt.Document(**{**doc.__dict__, "trace": trace})
    hop = vbdt.TraceHeader(organ_id=me, timestamp="2026-11-23T10:00:00+07:00")
    status = vbdt.StatusMessage(sender=doc.sender, response_for=vbdt.ResponseFor(organ_id=me, document_id=doc.document_id),
                                status_code=vbdt.StatusCode.ARRIVED, timestamp="2026-11-23T09:00:00+07:00", trace=trace)
    for package in (doc, status):
        root = to_tree(package)
        add_trace(root, hop)
        extended = type(package)(**{**package.__dict__, "trace": [*package.trace, hop]})
        assert serialize(root) == vbdt.write(extended)


def test_add_trace_takes_only_a_written_tree() -> None:
    from vbdt.edxml.writer import add_trace

    with pytest.raises(vbdt.UsageError, match="to_tree"):
        add_trace(etree.fromstring(b"<edXML/>"), vbdt.TraceHeader(organ_id="000.00.00.H54", timestamp="2026-11-23T10:00:00+07:00"))
