"""Bulk runs on both brokers: signed once, bad selectors and missing inboxes reported, resumed without a
second copy, progress events, the report (JSON/CSV/HTML data), hostile input."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import date
from pathlib import Path

import pytest

import vbdt
from conftest import H14, H14_COMMUNES, H54, H54_COMMUNES, H54_DISTRICT
from vbdt.cli.demo import build_directive
from vbdt.errors import UsageError, ValidationError
from vbdt.exchange.bulk import BulkEvent, BulkItem, resolve_selectors
from vbdt.exchange.bulk_report import render_csv, render_html
from vbdt.exchange.journal import BulkJournal, RecipientState, RunState
from vbdt.exchange.receipts import DeliveryState

SELECTORS = [f"{H14}/**:commune", f"{H54}/**", "000.00.00.H99/**", "not a selector!", f"{H54_COMMUNES[0]}/*"]


def test_resolve_selectors_reports_each_bad_one(example_directory: vbdt.Directory) -> None:
    chosen, problems = resolve_selectors(example_directory, [*SELECTORS, H14], exclude=H14)
    assert H14 not in chosen and len(chosen) == len(set(chosen))
    assert set(H14_COMMUNES) <= set(chosen) and {H54_DISTRICT, *H54_COMMUNES} <= set(chosen)
    assert "unknown" in problems["000.00.00.H99/**"].lower() or "000.00.00.H99" in problems["000.00.00.H99/**"]
    assert problems["not a selector!"].startswith("invalid selector")
    assert problems[f"{H54_COMMUNES[0]}/*"] == "selects no agency (other than the sender)"
    assert problems[H14] == "selects no agency (other than the sender)"


async def test_bulk_send_signs_once_reports_and_receipts(network, directive: vbdt.Document) -> None:  # type: ignore[no-untyped-def]
    sender = await network.agency(H14, pump=False)
    receivers = {o: await network.agency(o) for o in [*H14_COMMUNES, H54_DISTRICT, *H54_COMMUNES]}
    sender.serve()  # receipts are applied while the sender consumes its inbox
    events: list[BulkEvent] = []
    run = await sender.bulk_send(directive, to=SELECTORS, on_event=events.append)
    info = run.info()
    assert info.state is RunState.DONE and run.complete
    expected = len(network.directory.select(f"{H14}/**:commune", f"{H54}/**"))
    assert info.total == expected
    assert info.counts["confirmed"] == len(receivers)
    assert info.counts["unroutable"] == expected - len(receivers)  # the communes without an inbox
    assert set(run.problems) == {"000.00.00.H99/**", "not a selector!", f"{H54_COMMUNES[0]}/*"}
    assert events[0].kind == "planned" and events[-1].kind == "done" and events[-1].pending == 0
    assert events[-1].confirmed == len(receivers)
    # every receiver got the very same signed bytes: one signature for all
    items = {o: (await network.pump(a).take())[0] for o, a in receivers.items()}
    digests = {hashlib.sha256(a.ledger.incoming(H14, item.document_id, "document").body).hexdigest()
               for (o, a), item in zip(receivers.items(), items.values(), strict=True)}
    assert len(digests) == 1
    assert all(item.document.document_id == directive.document_id for item in items.values())
    await items[H54_DISTRICT].reject("sai địa bàn")
    compared = 0
    recipients = run.journal.recipients

    def listed(run_id: str) -> list:  # type: ignore[type-arg]
        nonlocal compared
        compared += 1
        return recipients(run_id)

    run.journal.recipients = listed  # type: ignore[method-assign]
    assert await run.wait_arrived(timeout=30) == len(receivers)
    # polls count; the copies are listed one by one only when the counts say all may be answered
    assert 1 <= compared <= 3, compared
    # counts that say a copy is still unanswered: thirty polls, no listing until the deadline's
    compared = 0
    run.ledger.state_counts = lambda document_id: {DeliveryState.SENT: 1}  # type: ignore[method-assign]
    assert await run.wait_arrived(timeout=0.3, poll=0.01) == len(receivers)
    assert compared == 1
    del run.ledger.state_counts, run.journal.recipients
    await network.eventually(lambda: any(d.state is DeliveryState.REJECTED for d in run.deliveries()))
    # the ledger sees the run like any send: unroutable copies are undeliverable
    states = {d.recipient: d.state for d in sender.status(str(directive.document_id))}
    assert {r for r, s in states.items() if s is DeliveryState.UNDELIVERABLE} == {
        r.recipient for r in run.journal.recipients(run.run_id) if r.state is RecipientState.UNROUTABLE}
    report = run.report()
    assert report.totals()["rejected"] == 1 and report.rejected()[0].reason == "sai địa bàn"
    assert sum(report.totals().values()) == expected
    assert {r.recipient for r in report.not_confirmed()} == {r for r, s in states.items() if s is DeliveryState.UNDELIVERABLE}
    csv_text = render_csv(report)
    assert csv_text.count("\n") == expected + 1 and "sai địa bàn" in csv_text
    html = render_html(report)
    assert "<svg" in html and "UBND Tỉnh Cao Bằng" in html and "<script" not in html
    # a second run of the same document is refused, naming the run to resume
    with pytest.raises(UsageError, match=f"bulk resume {run.run_id}"):
        await sender.bulk_send(directive, to=SELECTORS)
    # resuming a finished run sends nothing more
    again = await sender.bulk_resume(run.run_id)
    assert again.info().counts == info.counts
    await asyncio.sleep(0.3)
    for agency in receivers.values():
        assert len(agency.received()) == 1


async def test_bulk_resume_sends_only_unconfirmed(network, example_directory: vbdt.Directory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A run stopped before its publishing (as a crash after the plan leaves it) is finished by resume;
    copies the journal holds as confirmed are not published again."""
    sender = await network.agency(H14, pump=False)
    receivers = {o: await network.agency(o) for o in H14_COMMUNES}
    doc = build_directive(example_directory, issued=date(2026, 11, 24), number="06")
    journal = BulkJournal(tmp_path / "journal.db")
    bulk = sender.bulk(journal)

    class Stop(Exception):
        pass

    def stop_after_plan(event: BulkEvent) -> None:
        if event.kind == "planned":
            raise Stop  # dies between the journal's plan and the first publish

    with pytest.raises(Stop):
        await bulk.send([BulkItem(doc, H14_COMMUNES)], on_event=stop_after_plan)
    (info,) = journal.runs()
    assert info.state is RunState.INTERRUPTED and info.counts["pending"] == 2
    # one copy reached the broker before the stop and the journal knows it
    journal.mark(info.run_id, str(doc.document_id), [(H14_COMMUNES[0], RecipientState.CONFIRMED, None)])
    run = await sender.bulk_resume(info.run_id, journal=journal)
    assert run.info().state is RunState.DONE and run.info().counts["confirmed"] == 2
    (item,) = await network.pump(receivers[H14_COMMUNES[1]]).take()
    assert item.document_id == str(doc.document_id)
    with pytest.raises(asyncio.TimeoutError):
        await network.pump(receivers[H14_COMMUNES[0]]).take(timeout=1.0)  # never published to it


async def test_each_envelope_lists_its_group_and_resume_and_resend_keep_it(network, example_directory: vbdt.Directory,  # type: ignore[no-untyped-def]
                                                                          tmp_path: Path) -> None:
    """With two recipients per envelope, the five receivers get three envelopes, each listing its
    group in To; a run interrupted after its plan and resumed publishes each recipient its own
    envelope; a rejected copy is resent the same envelope, which still lists the recipient."""
    sender = await network.agency(H14, pump=False)
    chosen = [*H14_COMMUNES, H54_DISTRICT, *H54_COMMUNES]
    receivers = {o: await network.agency(o) for o in chosen}
    sender.serve()
    doc = build_directive(example_directory, issued=date(2026, 11, 24), number="07")
    journal = BulkJournal(tmp_path / "journal.db")
    bulk = sender.bulk(journal, group=2)

    def stop_after_plan(event: BulkEvent) -> None:
        if event.kind == "planned":
            raise KeyboardInterrupt  # Ctrl-C between the journal's plan and the first publish

    with pytest.raises(KeyboardInterrupt):
        await bulk.send([BulkItem(doc, chosen)], on_event=stop_after_plan)
    (info,) = journal.runs()
    assert journal.documents(info.run_id)[0].parts == 3
    assert journal.parts(info.run_id, str(doc.document_id)) == {o: i // 2 for i, o in enumerate(chosen)}
    run = await sender.bulk(journal, group=2).resume(info.run_id)
    assert run.info().state is RunState.DONE and run.info().counts["confirmed"] == len(chosen)
    bodies: dict[str, bytes] = {}
    for index, (organ_id, agency) in enumerate(receivers.items()):
        (item,) = await network.pump(agency).take()
        group = chosen[index - index % 2:index - index % 2 + 2]
        assert [str(r.organ_id) for r in item.document.recipients] == group
        bodies[organ_id] = agency.ledger.incoming(H14, item.document_id, "document").body
        if organ_id == H54_COMMUNES[1]:
            await item.reject("sai địa bàn")
    assert len(set(bodies.values())) == 3
    assert {o: journal.body(info.run_id, str(doc.document_id), i // 2) for i, o in enumerate(chosen)} == bodies
    await network.eventually(lambda: any(d.state is DeliveryState.REJECTED for d in run.deliveries()))
    await sender.resend(str(doc.document_id), [H54_COMMUNES[1]])
    (again,) = await network.pump(receivers[H54_COMMUNES[1]]).take()
    assert again.document_id == str(doc.document_id)
    assert [str(r.organ_id) for r in again.document.recipients] == [H54_COMMUNES[1]]


async def test_bulk_send_hostile_input(network, directive: vbdt.Document, example_directory: vbdt.Directory) -> None:  # type: ignore[no-untyped-def]
    sender = await network.agency(H14, pump=False)
    with pytest.raises(UsageError, match="no recipient"):
        await sender.bulk_send(directive, to=["000.00.00.H99", "**:nowhere"])
    with pytest.raises(UsageError, match="no recipient"):
        await sender.bulk_send(directive, to=[])
    with pytest.raises(UsageError, match="this agency is"):
        other = build_directive(example_directory, issued=date(2026, 11, 23))
        other = vbdt.Document(**{**other.__dict__, "sender": example_directory.organization(H54)})
        await sender.bulk_send(other, to=[H54_DISTRICT])
    broken = vbdt.Document(**{**directive.__dict__, "subject": ""})
    with pytest.raises(ValidationError):
        await sender.bulk_send(broken, to=H14_COMMUNES)
    with pytest.raises(UsageError, match="at least one document"):
        await sender.bulk().send([])
    with pytest.raises(UsageError, match="no bulk run"):
        await sender.bulk_resume("20260101-000000-zzzzzz")
    assert sender.bulk().journal.runs() == []  # nothing was journaled by a refused run


def test_bcc_chunks_fit_one_frame() -> None:
    from vbdt.exchange.amqp import _BCC_BYTES, _bcc_chunks

    keys = [f"H{p:02d}.{d:02d}.{c:02d}" for p in range(60) for d in range(20) for c in range(10)]
    chunks = _bcc_chunks(keys)
    assert [k for c in chunks for k in c] == keys and len(chunks) > 1
    assert all(sum(len(k) + 5 for k in c) <= _BCC_BYTES for c in chunks)
    assert _bcc_chunks([]) == []


def test_report_renders_hostile_names_as_text(tmp_path: Path, example_directory: vbdt.Directory) -> None:
    """Names and reasons come from the directory and from receivers: text in the page, inert in a spreadsheet."""
    from vbdt.exchange.ledger import SqliteLedger

    rows = [{"organ_id": H14, "name": "UBND <script>alert(1)</script>", "level": "province"},
            {"organ_id": H14_COMMUNES[0], "name": "=HYPERLINK(\"http://x\")", "level": "commune", "parent": H14}]
    directory = vbdt.Directory.from_rows(rows)
    journal = BulkJournal(tmp_path / "j.db")
    run_id = journal.create_run(H14, {"<img src=x onerror=alert(1)>": "invalid selector"})
    journal.add_document(run_id, "D1", [(b"<x/>", [H14_COMMUNES[0]])], "0" * 64,
                         {"code": "1/CT", "subject": "</table><b>", "promulgated": "2026-11-23"})
    journal.mark(run_id, "D1", [(H14_COMMUNES[0], RecipientState.UNROUTABLE, "<b>no inbox</b>")])
    from vbdt.exchange.bulk_report import build_report

    report = build_report(journal, SqliteLedger(tmp_path / "l.db"), directory, run_id)
    html = render_html(report)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "&lt;script&gt;" in html
    csv_text = render_csv(report)
    assert "'=HYPERLINK" in csv_text and "\n=HYPERLINK" not in csv_text


async def test_broker_gone_mid_run_leaves_a_consistent_journal(exchange_pki, example_directory: vbdt.Directory,  # type: ignore[no-untyped-def]
                                                                tmp_path: Path) -> None:
    """The connection lost between two batches: the run stops with a TransportError, the journal says
    what was confirmed, and a resume over a new connection sends the rest, once each."""
    from vbdt.errors import TransportError
    from vbdt.exchange.client import AgencyClient
    from vbdt.exchange.ledger import SqliteLedger
    from vbdt.exchange.memory import MemoryBroker

    pki, folder = exchange_pki
    broker = MemoryBroker()
    broker.provision([H14, *H14_COMMUNES, H54_DISTRICT, *H54_COMMUNES])
    recipients = [*H14_COMMUNES, H54_DISTRICT, *H54_COMMUNES]

    def client(transport):  # type: ignore[no-untyped-def]
        return AgencyClient(H14, transport=transport, ledger=SqliteLedger(tmp_path / "h14.db"), key=pki.agencies[H14],
                            trust=folder / "ca.pem", directory=example_directory, person=pki.signer, seal=pki.agencies[H14])

    first = client(broker.connect(H14))
    await first.open()
    bulk = first.bulk(BulkJournal(tmp_path / "h14.bulk.db"))
    bulk.batch, bulk.in_flight = 1, 1
    closing: list[asyncio.Task[None]] = []

    def lose_connection(event: BulkEvent) -> None:
        if event.kind == "progress" and not closing:
            closing.append(asyncio.get_running_loop().create_task(first.transport.close()))

    doc = build_directive(example_directory, issued=date(2026, 11, 26), number="08")
    with pytest.raises(TransportError):
        await bulk.send([BulkItem(doc, recipients)], on_event=lose_connection)
    (info,) = bulk.journal.runs()
    assert info.state is RunState.INTERRUPTED and info.counts["confirmed"] >= 1 and info.counts["pending"] >= 1
    assert info.counts["confirmed"] + info.counts["pending"] == len(recipients)
    await first.close()
    second = client(broker.connect(H14))
    await second.open()
    run = await second.bulk_resume(info.run_id, journal=BulkJournal(tmp_path / "h14.bulk.db"))
    assert run.info().state is RunState.DONE and run.info().counts["confirmed"] == len(recipients)
    assert all(broker.queue_depth(o) == 1 for o in recipients)  # one copy each: nothing twice
    await second.close()
