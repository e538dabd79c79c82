"""Signing and verifying in worker processes (issue 13), on the embedded broker and on RabbitMQ.

A document admitted in a worker process is the same item, with the same verdict, as in a thread;
hostile input in a worker still ends as a refusal; a worker that dies loses no job (it runs again
in a fresh worker), and a job that kills its worker twice is a WorkerCrashed, which the receiver
dead-letters with the reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import worker_jobs

import vbdt
from conftest import H54, H54_COMMUNES, H54_DISTRICT, Network, drain_dead_letters
from vbdt.cli.demo import compose
from vbdt.edxml.codes import StatusCode
from vbdt.edxml.limits import DEFAULT_LIMITS
from vbdt.edxml.model import StatusMessage
from vbdt.errors import UsageError, WorkerCrashed
from vbdt.exchange.receipts import DeliveryState
from vbdt.exchange.receiving import Admission
from vbdt.exchange.routing import HEADER_KIND, HEADER_REASON, routing_key
from vbdt.exchange.transport import Outgoing
from vbdt.exchange.workers import Accepted, Answering, Refusal, Workers


def _doc(directory: vbdt.Directory, to: list[str], number: str) -> vbdt.Document:
    return compose(directory, H54, to, number=number, notation="UBND-VP", type_name="Công văn",
                   subject=f"Về việc số {number}", issued=date.today())


async def test_admission_in_a_worker_process_equals_admission_in_a_thread(exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    pki, folder = exchange_pki
    body = vbdt.pack(_doc(example_directory, [H54_DISTRICT], "1"), pki.agencies[H54], person=pki.signer,
                     seal=pki.agencies[H54])
    tampered = body.replace(b"V\xe1\xbb\x81 vi\xe1\xbb\x87c s\xe1\xbb\x91 1", b"V\xe1\xbb\x81 vi\xe1\xbb\x87c s\xe1\xbb\x91 9")
    assert tampered != body
    admission = Admission(folder / "ca.pem", example_directory, "require", True, DEFAULT_LIMITS)
    answering = Answering(example_directory.organization(H54_DISTRICT))
    key = pki.agencies[H54_DISTRICT]
    thread, processes = Workers(1), Workers(2)
    try:
        outcomes = []
        for workers in (thread, processes):
            outcomes.append([await workers.admit(admission, b, me=H54_DISTRICT, publisher=H54, answering=answering, key=key)
                             for b in (body, tampered, b"<not edXML")])
    finally:
        await processes.close()
    (in_thread, bad_thread, garbage_thread), (in_worker, bad_worker, garbage_worker) = outcomes
    assert isinstance(in_thread, Accepted) and isinstance(in_worker, Accepted)
    for field in ("kind", "sender", "document_id", "digest", "package", "verdict"):
        assert getattr(in_worker, field) == getattr(in_thread, field), field
    assert in_worker.verdict.agency == H54 and set(in_worker.verdict.pdfs) == {a.name for a in in_worker.package.attachments}
    assert all(p.original_valid for p in in_worker.verdict.pdfs.values())
    for accepted in (in_thread, in_worker):  # each signed its 01, verifiable as the receiver's
        assert accepted.receipt is not None
        receipt = vbdt.verify(accepted.receipt, trust=folder / "ca.pem", directory=example_directory)
        assert receipt.agency == H54_DISTRICT and isinstance(receipt.package, StatusMessage)
        assert receipt.package.status_code is StatusCode.ARRIVED
        assert receipt.package.response_for.document_id == accepted.document_id
    # hostile input: the same refusal, as data, in a worker as in a thread
    assert isinstance(bad_worker, Refusal) and bad_worker == bad_thread and bad_worker.stage == "verify"
    assert isinstance(garbage_worker, Refusal) and garbage_worker == garbage_thread and garbage_worker.stage == "parse"


async def test_with_one_worker_small_jobs_run_on_the_loop_and_the_rest_in_a_thread(
        exchange_pki: Any, example_directory: vbdt.Directory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job of a millisecond costs more handed to a thread than run (the GIL changes hands): a small
    message's runs on the event loop; a big one, one that signs PDFs, one whose key stays on a token,
    or any with ``inline_bytes=0``, in a thread. Either way the outcome is the same."""
    import threading

    from vbdt.exchange import workers as module

    pki, folder = exchange_pki
    ran: list[str] = []
    loop_thread = threading.get_ident()
    for name in ("admit_job", "sign_job", "prepare_job"):
        job = getattr(module, name)

        def recorded(*args: Any, _job: Any = job) -> Any:
            ran.append("loop" if threading.get_ident() == loop_thread else "thread")
            return _job(*args)

        monkeypatch.setattr(module, name, recorded)
    doc = _doc(example_directory, [H54_DISTRICT], "5")
    small = vbdt.sign(doc, pki.agencies[H54])
    big = vbdt.pack(doc, pki.agencies[H54], person=pki.signer, seal=pki.agencies[H54])
    assert len(small) <= module.INLINE_BYTES < len(big)
    admission = Admission(folder / "ca.pem", example_directory, "optional", True, DEFAULT_LIMITS)
    answering = Answering(example_directory.organization(H54_DISTRICT))
    key, sending = pki.agencies[H54_DISTRICT], module.Sending(example_directory, DEFAULT_LIMITS)
    workers, threaded = Workers(1), Workers(1, inline_bytes=0)

    async def admit(pool: Workers, body: bytes) -> Accepted | Refusal:
        return await pool.admit(admission, body, me=H54_DISTRICT, publisher=H54, answering=answering, key=key)

    outcomes = [await admit(workers, small), await admit(threaded, small), await admit(workers, big)]
    assert ran == ["loop", "thread", "thread"]
    assert all(isinstance(o, Accepted) for o in outcomes)
    assert outcomes[0].verdict == outcomes[1].verdict and outcomes[0].package == outcomes[1].package
    ran.clear()
    receipt = StatusMessage(sender=example_directory.organization(H54_DISTRICT),
                            response_for=vbdt.ResponseFor(organ_id=H54, document_id=outcomes[0].document_id),
                            status_code=StatusCode.ACCEPTED, timestamp=dt.datetime.now(dt.UTC))
    assert vbdt.verify(await workers.sign(key, receipt), trust=folder / "ca.pem").agency == H54_DISTRICT
    await workers.prepare(sending, pki.agencies[H54], None, None, doc, H54)
    await workers.prepare(sending, pki.agencies[H54], pki.signer, pki.agencies[H54], doc, H54)  # PDFs signed
    assert ran == ["loop", "loop", "thread"]
    ran.clear()
    monkeypatch.setattr(module, "_key_data", lambda key: None)  # as a PKCS#11 key: it cannot leave its token
    on_token = Workers(1)
    await on_token.sign(key, receipt)
    await admit(on_token, small)
    assert ran == ["thread", "thread"]
    with pytest.raises(UsageError):
        Workers(1, inline_bytes=-1)


async def test_a_publisher_whose_message_held_the_loop_goes_to_a_thread(
        exchange_pki: Any, example_directory: vbdt.Directory, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Size does not bound every cost a peer can make: two admissions that held the event loop over
    INLINE_SLOW (or one over INLINE_SLOW_ONCE) send that publisher's next messages to a thread for
    INLINE_PENALTY seconds; the others stay on the loop, and wall time or a garbage collection is
    held against no one. A document to many recipients is prepared in a thread too."""
    import gc
    import threading
    import time

    from vbdt.exchange import workers as module

    _pki, folder = exchange_pki
    ran: list[tuple[str, str]] = []
    loop_thread = threading.get_ident()

    def slow_admission(*args: Any) -> Refusal:
        publisher = args[-1]
        ran.append((publisher, "loop" if threading.get_ident() == loop_thread else "thread"))
        if publisher in ("000.00.00.H99", "000.00.00.H98"):
            started = time.thread_time()
            while time.thread_time() - started < (0.05 if publisher == "000.00.00.H99" else 0.15):  # CPU, as a costly chain would
                pass
        elif publisher == H54:
            time.sleep(0.05)  # wall time, not CPU: the loop preempted by a busy host, no fault of H54
            gc.collect()  # a collection falling in the admission (of the cycles below): no fault of H54 either
        return Refusal("test", "verify", None, None)

    def cycles() -> None:  # made before H54's admission: only collecting them falls inside it
        garbage: list[list[object]] = [[] for _ in range(200_000)]
        for item in garbage:
            item.append(item)

    monkeypatch.setattr(module, "admit_job", slow_admission)
    monkeypatch.setattr(module, "INLINE_PENALTY", 2.0)
    admission = Admission(folder / "ca.pem", example_directory, "optional", True, DEFAULT_LIMITS)
    workers = Workers(1)
    caplog.set_level("INFO", logger=module.log.name)
    for publisher in ("000.00.00.H99", "000.00.00.H99", "000.00.00.H99", H54, "000.00.00.H99", "000.00.00.H98",
                      "000.00.00.H98"):
        if publisher == H54:
            cycles()
        await workers.admit(admission, b"<small/>", me=H54_DISTRICT, publisher=publisher)
    assert ran == [("000.00.00.H99", "loop"), ("000.00.00.H99", "loop"), ("000.00.00.H99", "thread"), (H54, "loop"),
                   ("000.00.00.H99", "thread"), ("000.00.00.H98", "loop"), ("000.00.00.H98", "thread")]
    assert caplog.text.count("once: noted") == 1 and caplog.text.count("go to a thread") == 2
    await workers.admit(admission, b"<small/>", me=H54_DISTRICT, publisher=H54)
    assert ran[-1] == (H54, "loop")
    await asyncio.sleep(2.1)
    ran.clear()
    await workers.admit(admission, b"<small/>", me=H54_DISTRICT, publisher="000.00.00.H99")
    assert ran == [("000.00.00.H99", "loop")]  # the penalty is over
    many = _doc(example_directory, [H54_DISTRICT, *[str(a.organ_id) for a in example_directory][:80]], "6")
    assert not workers._small(many) and workers._small(_doc(example_directory, [H54_DISTRICT], "7"))


def test_with_worker_processes_no_job_runs_on_the_loop_nor_is_timed_there() -> None:
    """The loop's guard times only what ran on the loop: with processes, waiting for a busy pool
    is not holding the loop (a benchmark with two workers logged 68 ordinary receipts as slow)."""
    assert Workers(1)._here((), True) and not Workers(1)._here((), False)
    assert not Workers(2)._here((), True)


async def test_an_item_received_through_worker_processes_is_the_one_received_in_a_thread(network: Network) -> None:
    sender = await network.agency(H54)
    in_thread = await network.agency(H54_DISTRICT)
    in_workers = await network.agency(H54_COMMUNES[0], workers=2)  # its own pool, closed with it
    sent = await sender.send(_doc(network.directory, [H54_DISTRICT, H54_COMMUNES[0]], "2"))
    (a,) = await network.pump(in_thread).take(timeout=60)
    (b,) = await network.pump(in_workers).take(timeout=60)
    assert a.document == b.document and a.kind == b.kind == "document" and a.sender == b.sender == H54
    assert a.verdict is not None and b.verdict is not None
    assert (a.verdict.agency, a.verdict.signer, a.verdict.chain, a.verdict.binding) == \
           (b.verdict.agency, b.verdict.signer, b.verdict.chain, b.verdict.binding)
    assert in_workers.workers.processes and len(in_workers.workers.pids()) == 2
    await network.eventually(lambda: {d.state for d in sender.status(sent.document_id)} == {DeliveryState.ARRIVED}, 60)
    await b.accept()  # an answer signed in a worker process
    await network.eventually(lambda: {d.recipient: d.state for d in sender.status(sent.document_id)}[H54_COMMUNES[0]]
                             is DeliveryState.ACCEPTED, 60)


async def test_hostile_input_in_a_worker_ends_as_a_refusal(network: Network) -> None:
    sender = await network.agency(H54)
    receiver = await network.agency(H54_DISTRICT, workers=2)
    body = vbdt.pack(_doc(network.directory, [H54_DISTRICT], "3"), network.pki.agencies[H54])  # type: ignore[attr-defined]
    forged = body.replace(b"UBND-VP", b"UBND-XX", 1)
    for message_id, data in (("garbage", b"\x00not xml at all"), ("forged", forged)):
        await sender.transport.publish(Outgoing(routing_key(H54_DISTRICT), data, message_id, {HEADER_KIND: "document"}))
    dead = await drain_dead_letters(network.admin, 2, timeout=60)
    reasons = {b: h[HEADER_REASON] for b, h in dead}
    assert reasons[b"\x00not xml at all"].startswith("parse:")
    assert reasons[forged].split(":")[0] in {"validate", "verify"}
    assert receiver.ledger.received() == []  # nothing stored
    sent = await sender.send(_doc(network.directory, [H54_DISTRICT], "4"))  # and the inbox goes on
    (item,) = await network.pump(receiver).take(timeout=60)
    assert item.document_id == sent.document_id


async def test_a_worker_killed_in_a_job_loses_nothing(tmp_path: Path) -> None:
    workers = Workers(2)
    try:
        await workers.start()
        first = set(workers.pids())
        marker, release = tmp_path / "running", tmp_path / "release"
        job = asyncio.ensure_future(workers.run(worker_jobs.pid_when_released, str(marker), str(release)))
        for _ in range(6000):
            if marker.exists() and marker.read_text():
                break
            await asyncio.sleep(0.01)
        killed = int(marker.read_text())
        assert killed in first
        os.kill(killed, signal.SIGKILL)  # as the OOM killer would, in the middle of the job
        for _ in range(6000):  # the job is running again, in the worker that replaced the dead one
            if marker.read_text() != str(killed):
                break
            await asyncio.sleep(0.01)
        release.write_text("go")
        again = await job
        assert again != killed and again in workers.pids() and killed not in workers.pids()
        assert workers.restarts == 1 and len(workers.pids()) == 2
    finally:
        await workers.close()


async def test_a_job_waiting_behind_one_whose_worker_dies_runs_elsewhere(tmp_path: Path) -> None:
    workers = Workers(2)
    try:
        await workers.start()
        release = tmp_path / "release"
        markers = [tmp_path / "first", tmp_path / "second"]
        running = [asyncio.ensure_future(workers.run(worker_jobs.pid_when_released, str(m), str(release))) for m in markers]
        for _ in range(6000):
            if all(m.exists() and m.read_text() for m in markers):
                break
            await asyncio.sleep(0.01)
        # both workers busy: this one waits in the pipe of the first worker, behind its job
        waiting = asyncio.ensure_future(workers.run(worker_jobs.pid))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        killed = int(markers[0].read_text())
        os.kill(killed, signal.SIGKILL)
        release.write_text("go")
        ran = await asyncio.wait_for(waiting, 60)  # not lost with the worker, nor blamed for its death
        first, second = await asyncio.wait_for(asyncio.gather(*running), 60)
        assert killed not in (ran, first, second) and ran in workers.pids()
        assert workers.restarts == 1 and len(workers.pids()) == 2
    finally:
        await workers.close()


async def test_a_job_that_kills_its_worker_twice_is_worker_crashed(tmp_path: Path) -> None:
    workers = Workers(2)
    try:
        with pytest.raises(WorkerCrashed, match="died"):
            await workers.run(worker_jobs.die)
        assert workers.restarts == 2  # each death replaced
        # a job that kills only the first worker it runs in succeeds in the second
        assert await workers.run(worker_jobs.die_once, str(tmp_path / "died")) != int((tmp_path / "died").read_text())
        with pytest.raises(ValueError, match="a bug"):  # an exception in a job comes back as itself
            await workers.run(worker_jobs.fail, "a bug")
        assert len(workers.pids()) == 2
    finally:
        await workers.close()
    with pytest.raises(UsageError):
        await workers.run(worker_jobs.fail, "closed")


class _KillingWorkers(Workers):
    """Real worker processes whose admission job kills them, as a crash in a C library would."""

    async def admit(self, *args: Any, **kwargs: Any) -> Any:
        return await self.run(worker_jobs.die)


async def test_a_message_that_kills_its_worker_is_dead_lettered_with_the_reason(network: Network) -> None:
    sender = await network.agency(H54)
    workers = _KillingWorkers(2)
    refused: list[vbdt.MessageRejected] = []
    try:
        await network.agency(H54_DISTRICT, workers=workers, on_refused=lambda exc, user: refused.append(exc))
        sent = await sender.send(_doc(network.directory, [H54_DISTRICT], "5"))
        ((body, headers),) = await drain_dead_letters(network.admin, 1, timeout=60)
    finally:
        await workers.close()
    kept = vbdt.verify(body, trust=network.folder / "ca.pem", directory=network.directory).package
    assert isinstance(kept, vbdt.Document) and kept.document_id == sent.document_id  # the message itself, not lost
    assert headers[HEADER_REASON].startswith("worker:") and "died" in headers[HEADER_REASON]
    assert "no 02 sent" in headers[HEADER_REASON]  # nothing was authenticated to answer
    assert [r.stage for r in refused] == ["worker"]
    assert sender.status(sent.document_id)[0].state is DeliveryState.SENT


def test_a_prepared_document_is_the_one_tree_checked_then_signed(exchange_pki: Any, example_directory: vbdt.Directory) -> None:
    """prepare_job writes the document once (its content digest and, with the hop added, the bytes
    sent), then checks and signs one parse of them: the same signed bytes as signing the written
    document with its trace, and the same refusals in the same order as before."""
    from vbdt.exchange import workers as module
    from vbdt.exchange.sending import content_digest

    pki, folder = exchange_pki
    key, sending = pki.agencies[H54], module.Sending(example_directory, DEFAULT_LIMITS)
    doc = _doc(example_directory, [H54_DISTRICT], "31")
    prepared = module.prepare_job(sending, key, None, None, doc, H54)
    assert prepared.failure is None and prepared.body is not None
    assert prepared.digest == content_digest(doc)  # of the document as given, without the hop
    sent = vbdt.verify(prepared.body, trust=folder / "ca.pem", directory=example_directory)
    assert isinstance(sent.package, vbdt.Document) and [str(t.organ_id) for t in sent.package.trace] == [H54]
    with_hop = vbdt.Document(**{**doc.__dict__, "trace": sent.package.trace})
    assert prepared.body == vbdt.sign(vbdt.write(with_hop), key)  # what validate-then-sign gave
    # a document that already ends with this agency's hop is not given another
    again = module.prepare_job(sending, key, None, None, with_hop, H54)
    assert again.body == prepared.body and again.digest == content_digest(with_hop)
    # refusals, as validation's findings: the directory (a recipient unknown to it), the rules
    stranger = vbdt.Document(**{**doc.__dict__, "recipients": [vbdt.Organization(organ_id="000.00.00.G99")]})
    refused = module.prepare_job(sending, key, None, None, stranger, H54)
    assert refused.body is None and refused.failure is not None
    assert isinstance(refused.failure.error(), vbdt.ValidationError)
    twice = vbdt.Document(**{**doc.__dict__, "attachments": [*doc.attachments, *doc.attachments]})
    doubled = module.prepare_job(sending, key, None, None, twice, H54)
    assert doubled.body is None and doubled.failure is not None and "EDX302" in str(doubled.failure.error())
    # a big attachment (its text serialised apart) is signed whole, before the model takes it out
    content = b"%PDF-1.4 " + bytes(range(256)) * 6000
    big = vbdt.Document(**{**doc.__dict__, "attachments": [
        *doc.attachments, vbdt.Attachment.from_bytes("phu-luc.pdf", content, content_id="cid:big")]})
    prepared = module.prepare_job(sending, key, None, None, big, H54)
    assert prepared.body is not None and len(prepared.body) > 2_000_000
    sent = vbdt.verify(prepared.body, trust=folder / "ca.pem", directory=example_directory)
    assert isinstance(sent.package, vbdt.Document)
    assert [a.content.read() for a in sent.package.attachments] == [a.content.read() for a in big.attachments]
    # PDFs to sign: validated, then packed (PDFs signed by the person and sealed, then the envelope)
    packed = module.prepare_job(sending, key, pki.signer, key, doc, H54)
    assert packed.body is not None and packed.digest == content_digest(doc)
    opened = vbdt.unpack(packed.body, trust=folder / "ca.pem", directory=example_directory, pdf_policy="require")
    assert opened.verified.agency == H54 and opened.pdfs and all(p.original_valid for p in opened.pdfs.values())
