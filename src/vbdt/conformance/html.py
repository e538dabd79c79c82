"""The conformance report as one self-contained HTML page a vendor attaches to a ticket.

Built as an element tree with lxml's HTML builder, so every text from a package (file names,
reasons quoting element values) is a text node, escaped by the serialiser: nothing of the input
can become markup. Inline CSS only, no script, no external asset (it prints the same offline).
Characters XML cannot hold (control characters, lone surrogates from file names) are replaced by
U+FFFD first.
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from lxml.html import builder as E

from vbdt.conformance.checks import ConformanceReport, FileReport, Outcome

__all__ = ["render_html"]

_CSS = """
body{font-family:"Noto Sans","DejaVu Sans",Arial,sans-serif;margin:2em;color:#222;font-size:14px}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
.meta{color:#555} table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3} .badge{display:inline-block;padding:1px 6px;border-radius:3px;font-weight:bold;color:#fff}
.pass{background:#2e7d32} .fail{background:#c62828} .warn{background:#ef6c00} .skipped{background:#757575}
.verdict{font-size:1.1em;font-weight:bold} .ok{color:#2e7d32} .bad{color:#c62828}
ul.findings{margin:.3em 0;padding-left:1.2em} .code{font-family:monospace;font-weight:bold}
.where{font-family:monospace;color:#555;word-break:break-all} .why,.fix,.note{color:#444;font-size:.95em}
.vi{color:#666;font-style:italic}
"""

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _t(text: object) -> str:
    """Text safe for an XML/HTML tree (escaping is the serialiser's job)."""
    return _NOT_XML.sub("\ufffd", str(text))


def _badge(outcome: str) -> Any:
    return E.SPAN(E.CLASS(f"badge {outcome}"), _t(outcome.upper()))


def _verdict(ok: bool) -> Any:
    if ok:
        return E.SPAN(E.CLASS("verdict ok"), "CONFORMS — đạt")
    return E.SPAN(E.CLASS("verdict bad"), "DOES NOT CONFORM — không đạt")


def _summary(report: ConformanceReport) -> Any:
    totals = report.totals()
    rows = [
        ("Files / Tệp", totals["files"]), ("Conforming / Đạt", totals["conforming"]),
        ("Unreadable / Không đọc được", totals["unreadable"]),
        *((f"Checks {o.value} / Kiểm tra {o.value}", totals[o.value]) for o in Outcome),
    ]
    return E.TABLE(E.CLASS("summary"), *(E.TR(E.TH(_t(k)), E.TD(_t(v))) for k, v in rows))


def _findings(result_findings: list[Any]) -> Any:
    items = []
    for f in result_findings:
        where = " ".join(x for x in (f"line {f.line}" if f.line else "", f.path) if x)
        items.append(E.LI(
            E.SPAN(E.CLASS("code"), _t(f.code)), " ", _t(f.severity.value), ": ", _t(f.reason),
            *((E.DIV(E.CLASS("where"), _t(where)),) if where else ()),
            E.DIV(E.CLASS("why"), E.B("Why: "), _t(f.why)),
            E.DIV(E.CLASS("fix"), E.B("Fix: "), _t(f.fix)),
        ))  # fmt: skip
    return E.UL(E.CLASS("findings"), *items)


def _file(file: FileReport, index: int) -> Any:
    heading = E.H2(E.A(_t(file.source), name=f"file-{index}"), " ", _verdict(file.conforms))
    if file.error is not None:
        return E.DIV(E.CLASS("file"), heading, E.P(E.CLASS("bad"), _t(f"Not read: {file.error}")))
    counts = file.counts()
    meta = E.P(E.CLASS("meta"), _t(f"kind: {file.kind or 'not edXML'} · "
                                   + ", ".join(f"{n} {o}" for o, n in counts.items())))
    rows = [E.TR(E.TH("Outcome"), E.TH("Check"), E.TH("Findings, why it matters, how to fix"))]
    for check in file.checks:
        detail: list[Any] = []
        if check.note:
            detail.append(E.DIV(E.CLASS("note"), _t(check.note)))
        if check.findings:
            detail.append(_findings(check.findings))
        elif check.outcome is not Outcome.SKIPPED:
            detail.append(E.DIV(E.CLASS("why"), _t(check.why)))
        if check.outcome is Outcome.FAIL:
            detail.append(E.DIV(E.CLASS("fix"), E.B("To pass: "), _t(check.fix)))
        rows.append(E.TR(
            E.TD(_badge(check.outcome.value)),
            E.TD(E.SPAN(E.CLASS("code"), _t(check.id)), E.BR(), _t(check.title), E.BR(),
                 E.SPAN(E.CLASS("vi"), _t(check.title_vi))),
            E.TD(*detail),
        ))  # fmt: skip
    return E.DIV(E.CLASS("file"), heading, meta, E.TABLE(*rows))


def render_html(report: ConformanceReport, *, version: str = "") -> str:
    """The whole report as one HTML page (a string; write it as UTF-8)."""
    settings = (f"profile {report.profile} · trust anchors {'given' if report.trust else 'not given'} · "
                f"directory {'given' if report.directory else 'not given'}")
    if report.generated is not None:
        settings += f" · generated {report.generated:%Y/%m/%d %H:%M:%S %z}"
    if version:
        settings += f" · vbdt {version}"
    index = E.UL(*(E.LI(E.A(_t(f.source), href=f"#file-{i}"), " ", _badge("pass" if f.conforms else "fail"))
                   for i, f in enumerate(report.files)))
    page = E.HTML(
        E.HEAD(E.META(charset="utf-8"), E.TITLE("edXML conformance report (vbdt check)"), E.STYLE(_CSS)),
        E.BODY(
            E.H1("edXML conformance report"),
            E.P(E.CLASS("vi"), "Báo cáo kiểm tra sự phù hợp gói tin edXML (QCVN 102:2016)"),
            E.P(E.CLASS("meta"), _t(settings)),
            _verdict(report.conforms),
            _summary(report),
            index,
            *(_file(f, i) for i, f in enumerate(report.files)),
        ),
        lang="vi",
    )  # fmt: skip
    body: str = etree.tostring(page, method="html", encoding="unicode", doctype="<!DOCTYPE html>")
    return body + "\n"
