"""The reader's fast paths say exactly what the slow ones said (issue 10's speed work)."""

from __future__ import annotations

from datetime import datetime

import pytest
from lxml import etree

from vbdt.edxml.findings import Severity
from vbdt.edxml.quirks import _reorder, _Report
from vbdt.edxml.rules import _valid_date


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
