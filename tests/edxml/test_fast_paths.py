"""The reader's fast paths say exactly what the slow ones said (issue 10's speed work)."""

from __future__ import annotations

from datetime import datetime

import pytest
from lxml import etree

from vbdt.edxml import xmlparse
from vbdt.edxml.findings import Severity
from vbdt.edxml.quirks import _reorder, _Report
from vbdt.edxml.rules import _valid_date
from vbdt.errors import DocumentTooComplex, DocumentTooDeep, UnsafeXml


def _strptime_verdict(text: str) -> str | None:
    try:
        datetime.strptime(text, "%Y/%m/%d")
    except ValueError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    "text",
    ["2015/09/30", "2016/02/29", "2015/02/29", "2014/02/30", "2015/13/01", "2015/00/10", "0000/01/01",
     "0001/01/01", "9999/12/31", "2015/9/30", "２０１５/09/30", "2015/09/30 ", "", "x"],
)
def test_valid_date_gives_strptime_verdict_and_words(text: str) -> None:
    assert _valid_date(text) == _strptime_verdict(text)


def test_reorder_skips_comments_and_keeps_the_order_found_among_equals() -> None:
    parent = etree.fromstring(b"<P xmlns='urn:e'><B>1</B><!-- c --><A>2</A><B>3</B></P>")
    report = _Report(Severity.WARNING)
    _reorder(report, parent, ("A", "B"))
    assert [(etree.QName(c).localname, c.text) for c in parent.iterchildren(etree.Element)] == [
        ("A", "2"), ("B", "1"), ("B", "3")
    ]
    (finding,) = report.findings
    assert (finding.code, finding.path, finding.message) == (
        "EDX902", "/P/A", "A comes after B in P; the standard order is A, B"
    )


def test_reorder_leaves_an_unknown_child_to_the_schema() -> None:
    parent = etree.fromstring(b"<P xmlns='urn:e'><B/><X/><A/></P>")
    report = _Report(Severity.ERROR)
    _reorder(report, parent, ("A", "B"))
    assert report.findings == []
    assert [etree.QName(c).localname for c in parent] == ["B", "X", "A"]


# -- the byte scans that decide whether a document is parsed whole (issue 13)

_SCAN_BYTES = [
    b"", b"<", b"=", b"<!DOCTYPE", b"x<!DOCTYPE", b"<!DOCTYP", b"<<!DOCTYPE<", b"aaaa<!DOC" + b"TYPE",
    b"<a b='1' c='2'>" + b"Q" * 40 + b"<!DOCTYPE x>" + b"=" * 9 + b"</a>",
    b"=" * 30 + b"<" * 30, b"<" + b"a" * 50 + b"<!DOCTYPE" + b"a" * 50 + b"<",
]


@pytest.mark.parametrize("span", [1, 2, 3, 7, 16, 64 * 1024])
@pytest.mark.parametrize("data", _SCAN_BYTES)
def test_span_scans_say_what_a_whole_count_and_find_say(monkeypatch: pytest.MonkeyPatch, data: bytes, span: int) -> None:
    monkeypatch.setattr(xmlparse, "_SPAN", span)  # a match across two spans, at every offset
    assert xmlparse._has_doctype(data) == (data.find(b"<!DOCTYPE") >= 0)
    for byte in (b"<", b"="):
        whole = data.count(byte)
        for limit in range(whole + 2):
            counted = xmlparse._count_upto(data, byte, limit)
            assert (counted <= limit) == (whole <= limit)
            if whole <= limit:
                assert counted == whole


def test_a_doctype_deep_in_a_large_prolog_is_still_refused() -> None:
    # past the byte-count shortcut (more bytes than the node limits), with the DOCTYPE two spans in
    limits = xmlparse.Limits(max_elements=1000, max_attributes=1000)
    comment = b"<!--" + b"A" * (2 * 64 * 1024 + 5) + b"-->"
    data = comment + b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><edXML xmlns="' + xmlparse.EDXML_NS.encode() + b'"/>'
    with pytest.raises(UnsafeXml):
        xmlparse.parse_xml(data, limits)


def test_a_large_document_over_the_node_limit_is_still_refused_while_parsed() -> None:
    limits = xmlparse.Limits(max_elements=1000, max_attributes=1000)
    text = b"<x>" + b"A" * (3 * 64 * 1024) + b"</x>"  # a long text between the counted spans
    data = b'<edXML xmlns="' + xmlparse.EDXML_NS.encode() + b'">' + text + b"<y/>" * 1001 + b"</edXML>"
    with pytest.raises(DocumentTooComplex):
        xmlparse.parse_xml(data, limits)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("self_closing", [True, False])
def test_the_depth_bound_from_the_bytes_never_passes_a_document_too_deep(depth: int, self_closing: bool) -> None:
    # the least markup a chain of `depth` elements can have: at max_depth 3, depth 4 is 7 bytes '<'
    ns = xmlparse.EDXML_NS.encode()
    inner = b"<x/>" if self_closing else b"<x></x>"
    data = b"<edXML xmlns='" + ns + b"'>" + b"<x>" * (depth - 2) + inner + b"</x>" * (depth - 2) + b"</edXML>"
    if depth == 1:
        data = b"<edXML xmlns='" + ns + b"'/>"
    limits = xmlparse.Limits(max_depth=3)
    if depth > 3:
        assert not xmlparse._too_few_tags_to_nest(data, 3)  # so the probe runs
        with pytest.raises(DocumentTooDeep):
            xmlparse.parse_xml(data, limits)
    else:
        assert xmlparse._too_few_tags_to_nest(data, 3)  # the probe is skipped, rightly
        assert xmlparse.parse_xml(data, limits).getroot().tag == f"{{{xmlparse.EDXML_NS}}}edXML"
