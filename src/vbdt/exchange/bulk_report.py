"""The report of a bulk run: who received, accepted, rejected; per district; overdue; as JSON, CSV or one HTML page.

Each copy's state is the broker's word from the run's journal until the broker confirmed it
(``pending``, ``unroutable``, ``failed``), then the receipts' from the ledger (``sent``, ``arrived``
… ``completed``, ``rejected`` with its reason). Overdue copies are the ledger's (Decree 30 on the
working-day calendar), with the working days late. Copies are grouped by the recipient's superior
in the directory: the district of a commune before 2025, the province since.

The HTML page is built as an element tree (lxml), every text a text node escaped by the serialiser;
inline CSS and an inline SVG bar chart, no script, no external asset: it prints as it shows, offline.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from lxml import etree
from lxml.builder import ElementMaker
from lxml.html import builder as E

from vbdt.directory.agencies import Directory
from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import DirectoryError
from vbdt.exchange.journal import BulkJournal, RecipientState, RunInfo
from vbdt.exchange.ledger import Ledger
from vbdt.exchange.receipts import DeliveryState

__all__ = ["ANSWERED", "BulkReport", "ReportRow", "build_report", "render_csv", "render_html"]

ANSWERED = frozenset({DeliveryState.ARRIVED.value, DeliveryState.ACCEPTED.value, DeliveryState.ASSIGNED.value,
                      DeliveryState.PROCESSING.value, DeliveryState.COMPLETED.value, DeliveryState.REJECTED.value,
                      DeliveryState.RECALL_REQUESTED.value, DeliveryState.RECALLED.value})
"""States in which the recipient's software confirmed it has the document."""

_LABELS = {
    "pending": "chưa được broker xác nhận", "unroutable": "không có hộp thư", "failed": "broker từ chối",
    **{s.value: s.label for s in DeliveryState},
}


@dataclass(frozen=True)
class ReportRow:
    """One copy: a document at one recipient."""

    document_id: str
    recipient: str
    name: str
    group: str
    """The recipient's superior (district or province) name, or the recipient's own for a top-level agency."""
    state: str
    """``pending``/``unroutable``/``failed`` (broker) or a :class:`DeliveryState` value (receipts)."""
    reason: str | None
    late_by: int | None
    """Working days past its Decree 30 deadline, when overdue."""


@dataclass(frozen=True)
class BulkReport:
    """Everything ``vbdt bulk report`` shows."""

    run: RunInfo
    sender: str
    sender_name: str
    documents: list[dict[str, Any]]
    rows: list[ReportRow]
    generated_at: dt.datetime

    def totals(self) -> dict[str, int]:
        """Copies per state."""
        return dict(Counter(r.state for r in self.rows).most_common())

    def by_group(self) -> dict[str, dict[str, int]]:
        """Copies per state for each district/province, in the order first met."""
        out: dict[str, Counter[str]] = {}
        for row in self.rows:
            out.setdefault(row.group, Counter())[row.state] += 1
        return {g: dict(c) for g, c in out.items()}

    def not_confirmed(self) -> list[ReportRow]:
        """Copies whose recipient has not confirmed arrival (01) yet."""
        return [r for r in self.rows if r.state not in ANSWERED]

    def overdue(self) -> list[ReportRow]:
        """Copies past their Decree 30 deadline."""
        return [r for r in self.rows if r.late_by is not None]

    def rejected(self) -> list[ReportRow]:
        """Copies the recipient refused (02), with the reason it gave."""
        return [r for r in self.rows if r.state == DeliveryState.REJECTED.value]

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {"run": self.run.run_id, "state": self.run.state.value, "sender": self.sender, "sender_name": self.sender_name,
                "generated_at": self.generated_at.isoformat(), "documents": self.documents, "problems": self.run.problems,
                "totals": self.totals(), "by_group": self.by_group(), "recipients": [asdict(r) for r in self.rows]}


def _group(directory: Directory, organ_id: str) -> tuple[str, str]:
    try:
        agency = directory.get(organ_id)
        parent = directory.parent(organ_id)
    except DirectoryError:
        return organ_id, "(không có trong danh bạ)"
    return agency.name, (parent.name if parent is not None else agency.name)


def build_report(journal: BulkJournal, ledger: Ledger, directory: Directory, run_id: str,
                 now: dt.datetime | None = None) -> BulkReport:
    """The report of a run now (``now``: the clock for overdue, Vietnam time by default)."""
    info = journal.run(run_id)
    now = (now or dt.datetime.now(VIETNAM_TZ)).astimezone(VIETNAM_TZ)
    documents = journal.documents(run_id)
    ids = {d.document_id for d in documents}
    delivered = {(d.document_id, d.recipient): d for document_id in ids for d in ledger.deliveries(document_id)}
    late = {(o.document_id, o.recipient): o.late_by for o in ledger.overdue(now) if o.document_id in ids}
    rows = []
    for copy in journal.recipients(run_id):
        key = (copy.document_id, copy.recipient)
        name, group = _group(directory, copy.recipient)
        state, reason = copy.state.value, copy.reason
        delivery = delivered.get(key)
        if copy.state is RecipientState.CONFIRMED and delivery is not None:
            state, reason = delivery.state.value, delivery.reason
        elif copy.state is RecipientState.PENDING and delivery is not None and delivery.state.value in ANSWERED:
            state, reason = delivery.state.value, delivery.reason  # a receipt overtook the journal's confirm
        rows.append(ReportRow(copy.document_id, copy.recipient, name, group, state, reason, late.get(key)))
    try:
        sender_name = directory.get(info.organ_id).name
    except DirectoryError:
        sender_name = info.organ_id
    docs = [{"document_id": d.document_id, "code": d.record.get("code"), "subject": d.record.get("subject"),
             "promulgated": d.record.get("promulgated"), "bytes": d.size} for d in documents]
    return BulkReport(info, info.organ_id, sender_name, docs, rows, now)


def render_csv(report: BulkReport) -> str:
    """One line per copy: document, recipient, name, group, state, label, reason, working days late."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["document_id", "recipient", "name", "group", "state", "label", "reason", "late_by_working_days"])
    for r in report.rows:
        # A cell beginning with = + - @ is a formula to a spreadsheet: quoted with an apostrophe.
        writer.writerow([_cell(v) for v in (r.document_id, r.recipient, r.name, r.group, r.state, _LABELS.get(r.state, r.state),
                                            r.reason or "", "" if r.late_by is None else r.late_by)])
    return out.getvalue()


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# -- HTML -----------------------------------------------------------------------------------------

_CSS = """
body{font-family:"Noto Sans","DejaVu Sans",Arial,sans-serif;margin:2em;color:#222;font-size:13px}
.office{text-align:center;font-weight:bold;text-transform:uppercase} .motto{text-align:center}
h1{font-size:1.4em;text-align:center;margin:.8em 0 .2em} h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ccc}
.meta{color:#555;text-align:center} table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top} th{background:#f3f3f3}
td.n{text-align:right} .late{color:#b71c1c;font-weight:bold} svg{display:block;margin:.5em 0}
@media print{h2{page-break-after:avoid} tr{page-break-inside:avoid}}
"""
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SVG = ElementMaker()
_COLOURS = (("answered", "#2e7d32", "đã nhận"), ("sent", "#9e9e9e", "chờ xác nhận"), ("rejected", "#ef6c00", "từ chối"),
            ("missing", "#c62828", "chưa gửi được"))


def _t(text: object) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _bucket(state: str) -> str:
    if state == DeliveryState.REJECTED.value:
        return "rejected"
    if state in ANSWERED:
        return "answered"
    if state in (DeliveryState.SENT.value, DeliveryState.QUEUED.value):
        return "sent"
    return "missing"


def _chart(report: BulkReport) -> Any:
    """A horizontal stacked bar per group: answered, waiting, rejected, not delivered."""
    groups = report.by_group()
    label_w, bar_w, row_h = 260, 420, 16
    height = row_h * len(groups) + 30
    svg = _SVG.svg(width=str(label_w + bar_w + 80), height=str(height), viewBox=f"0 0 {label_w + bar_w + 80} {height}",
                   role="img")
    widest = max((sum(c.values()) for c in groups.values()), default=1)
    for i, (group, counts) in enumerate(groups.items()):
        y = i * row_h
        svg.append(_SVG.text(_t(group[:42]), x="0", y=str(y + 12), **{"font-size": "11"}))
        x = float(label_w)
        buckets = Counter[str]()
        for state, n in counts.items():
            buckets[_bucket(state)] += n
        for bucket, colour, _ in _COLOURS:
            width = bar_w * buckets[bucket] / widest
            if width:
                svg.append(_SVG.rect(x=f"{x:.1f}", y=str(y + 2), width=f"{width:.1f}", height=str(row_h - 4), fill=colour))
                x += width
        svg.append(_SVG.text(f"{buckets['answered']}/{sum(counts.values())}", x=f"{x + 4:.1f}", y=str(y + 12),
                             **{"font-size": "11"}))
    legend_y = row_h * len(groups) + 20
    for j, (_, colour, label) in enumerate(_COLOURS):
        svg.append(_SVG.rect(x=str(j * 130), y=str(legend_y - 9), width="10", height="10", fill=colour))
        svg.append(_SVG.text(label, x=str(j * 130 + 14), y=str(legend_y), **{"font-size": "11"}))
    return svg


def _table(headers: list[str], rows: list[list[object]], numeric: tuple[int, ...] = ()) -> Any:
    return E.TABLE(E.TR(*(E.TH(h) for h in headers)),
                   *(E.TR(*((E.TD(E.CLASS("n"), _t(v)) if i in numeric else E.TD(_t(v))) for i, v in enumerate(row)))
                     for row in rows))


def render_html(report: BulkReport) -> str:
    """One self-contained page: the office's header, totals, a bar chart per group, the copies not
    confirmed, the overdue ones (working days) and the rejected ones with their reasons."""
    totals = report.totals()
    answered = sum(n for s, n in totals.items() if s in ANSWERED)
    docs = [[d["document_id"], d["code"] or "", d["subject"] or "", d["promulgated"] or ""] for d in report.documents]
    body = [
        E.P(E.CLASS("office"), _t(report.sender_name)),
        E.P(E.CLASS("motto"), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM — Độc lập - Tự do - Hạnh phúc"),
        E.H1("BÁO CÁO GỬI VĂN BẢN HÀNG LOẠT"),
        E.P(E.CLASS("meta"), _t(f"Lượt gửi {report.run.run_id} · {report.sender} · lập lúc "
                                f"{report.generated_at:%H:%M %d/%m/%Y} · trạng thái {report.run.state.value}")),
        E.H2("Văn bản"), _table(["Mã định danh văn bản", "Số, ký hiệu", "Trích yếu", "Ngày ban hành"], docs),
        E.H2("Tổng hợp"),
        _table(["Trạng thái", "Nhãn", "Số bản"], [[s, _LABELS.get(s, s), n] for s, n in totals.items()]
               + [["total", "Tổng số bản", len(report.rows)], ["answered", "Đã xác nhận nhận (01 trở lên)", answered]],
               numeric=(2,)),
    ]
    if report.run.problems:
        body += [E.H2("Bộ chọn / dòng bị bỏ qua"), _table(["Bộ chọn hoặc dòng", "Lý do"], [[k, v] for k, v in report.run.problems.items()])]
    body += [E.H2("Theo huyện / tỉnh"), _chart(report)]
    overdue = report.overdue()
    body += [E.H2(f"Quá hạn ({len(overdue)})"),
             _table(["Cơ quan", "Mã định danh", "Trạng thái", "Số ngày làm việc quá hạn"],
                    [[r.name, r.recipient, _LABELS.get(r.state, r.state), r.late_by] for r in overdue], numeric=(3,))]
    rejected = report.rejected()
    body += [E.H2(f"Từ chối ({len(rejected)})"),
             _table(["Cơ quan", "Mã định danh", "Văn bản", "Lý do"], [[r.name, r.recipient, r.document_id, r.reason or ""]
                                                                      for r in rejected])]
    waiting = report.not_confirmed()
    body += [E.H2(f"Chưa xác nhận đã nhận ({len(waiting)})"),
             _table(["Cơ quan", "Mã định danh", "Thuộc", "Trạng thái", "Ghi chú"],
                    [[r.name, r.recipient, r.group, _LABELS.get(r.state, r.state), r.reason or ""] for r in waiting])]
    page = E.HTML(E.HEAD(E.META(charset="utf-8"), E.TITLE(_t(f"Báo cáo gửi hàng loạt {report.run.run_id}")),
                         E.STYLE(_CSS)), E.BODY(*body))
    return "<!DOCTYPE html>\n" + str(etree.tostring(page, method="html", encoding="unicode"))
