"""Where the CPU work of the exchange runs: signing and verifying, off the event loop.

:class:`Workers` runs three jobs for the agency client: the admission of a received message
(:func:`vbdt.exchange.pipeline.admit`) with, for a document, the signed 01 that answers it; the
signing of a status message; the preparation of a document to send (its content digest, its
validation, its signatures). ``Workers(1)``, the default, uses one core: a job on a small message
(up to :data:`INLINE_BYTES`: status messages, documents without big attachments) runs on the event
loop itself, a bigger one, or one that signs with a key on a token or signs PDFs, in a thread
(``asyncio.to_thread``). Handing a job of a millisecond to a thread cost more than the job: the
two threads take the GIL from each other (measured with ``benchmarks/bench_exchange.py``, one
worker: 6.1-8.2 ms of CPU a document with a thread per job, 5.4 ms inline, throughput +20-45 %),
and a millisecond on the loop delays its other work no more than that. ``Workers(n)`` with ``n > 1`` runs them in
a pool of ``n`` processes, so that ``n`` cores verify and sign at once while the event loop does
the broker and the ledger; the inbox still has one consumer, and the parallelism comes from its
prefetch window (``prefetch`` deliveries in hand at once).

What crosses the process boundary is small and picklable: the body's bytes and the publisher in,
the admitted package (the model), its verdict as data and the signed 01 out; the model to sign in,
signed bytes out. What every job needs (the directory, the trust anchors' path, the limits; a key,
as DER) is sent to each worker process once, under a token, and kept there with the worker's own
caches (trust stores and chain verdicts, KeyInfo certificates, compiled schemas, loaded keys). A
key that cannot leave the process (a PKCS#11 token) is used in a thread of this process, as with
one worker. Processes are started with ``spawn``: an application's main module must be importable
without side effects (the usual ``if __name__ == "__main__":`` guard).

A worker that dies (killed, out of memory, a crash in a C library) was running one job: each
worker process runs one job at a time, the oldest it has not answered (a second one, when small,
waits in its pipe, so that the worker goes on without waiting for the event loop; that one never
started, and goes back to the queue). A new process takes its place, and the job is run once more
in a fresh worker: it succeeds if the worker was killed from outside (nothing is lost, nothing is
refused for it), and raises :class:`~vbdt.errors.WorkerCrashed` if it kills that one too; the
receiver dead-letters that message with the reason. The jobs of the other workers go on.
Hostile input rarely gets that far: :func:`~vbdt.exchange.pipeline.admit` is total, so its
refusals come back as data (:class:`Refusal`) and end as refusals, in a worker as in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import logging
import multiprocessing
import multiprocessing.context
import pickle
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from vbdt.edxml.codes import StatusCode
from vbdt.edxml.model import Document, Organization, Package, ResponseFor, StaffInfo, StatusMessage
from vbdt.errors import MessageRejected, UsageError, VbdtError, WorkerCrashed
from vbdt.exchange import loopclock
from vbdt.kept import Kept, KeptFor
from vbdt.trust.chain import TrustStore, anchors_file
from vbdt.trust.keys import SigningKey

if TYPE_CHECKING:  # pragma: no cover - typing only
    from vbdt.directory.agencies import Directory
    from vbdt.edxml.limits import Limits
    from vbdt.exchange.answers import Verdict
    from vbdt.exchange.receiving import Admission

__all__ = ["Accepted", "Prepared", "Refusal", "Workers"]

log = logging.getLogger("vbdt.exchange.workers")

T = TypeVar("T")


@dataclass(frozen=True)
class Accepted:
    """A received message that passed :func:`~vbdt.exchange.pipeline.admit`, as the worker hands it back."""

    kind: str
    """``document`` or ``status``."""
    sender: str
    document_id: str
    digest: str
    """:attr:`vbdt.exchange.pipeline.Admitted.digest`."""
    package: Package
    verdict: Verdict
    receipt: bytes | None = None
    """For a document (when asked): the signed 01 answering it."""
    receipt_at: dt.datetime | None = None
    """The 01's signed timestamp."""


@dataclass(frozen=True)
class Refusal:
    """:class:`~vbdt.errors.MessageRejected` as data (an exception with keyword state does not pickle)."""

    reason: str
    stage: str
    sender: str | None
    document_id: str | None

    def error(self) -> MessageRejected:
        """The rejection to raise."""
        return MessageRejected(self.reason, stage=self.stage, sender=self.sender, document_id=self.document_id)


@dataclass(frozen=True)
class Prepared:
    """A document made ready to send: the digest of what the application gave, and the signed package
    (or why it could not be: raised by the caller after its own checks)."""

    digest: str
    body: bytes | None
    failure: _Raised | None = None
    """Why there is no body (:meth:`_Raised.error` is the exception to raise)."""


@dataclass(frozen=True)
class Answering:
    """Who answers a received document with a 01 (the receiver's organisation and staff)."""

    me: Organization
    staff: StaffInfo | None = None


@dataclass(frozen=True)
class Sending:
    """What preparing a document needs besides the document and the keys."""

    directory: Directory
    limits: Limits


# -- the jobs (run in a thread of this process, or in a worker process) -----------------------------

def admit_job(admission: Admission, answering: Answering | None, key: SigningKey | None, body: bytes, me: str,
              publisher: str | None) -> Accepted | Refusal:
    """Admit one message; for a document, when ``answering`` and ``key`` are given, sign its 01 too
    (its timestamp from this process's record: a worker's is reconciled by the caller, see
    :func:`vbdt.exchange.answers.claim_stamp`)."""
    from vbdt.exchange.answers import Verdict, signing_stamp
    from vbdt.exchange.pipeline import admit
    from vbdt.trust.xmldsig import sign

    try:
        admitted = admit(body, me=me, publisher=publisher, trust=_trust(admission.trust), directory=admission.directory,
                         pdf_policy=admission.pdf_policy, check_publisher=admission.check_publisher,
                         limits=admission.limits)
    except MessageRejected as exc:
        return Refusal(exc.reason, exc.stage, exc.sender, exc.document_id)
    package = admitted.package
    receipt: bytes | None = None
    stamp: dt.datetime | None = None
    if isinstance(package, Document) and answering is not None and key is not None:
        stamp = signing_stamp((me, admitted.sender, admitted.document_id, StatusCode.ARRIVED.value))
        receipt = sign(arrival_receipt(answering, package, admitted.sender, admitted.document_id, stamp), key)
    return Accepted(admitted.kind, admitted.sender, admitted.document_id, admitted.digest, package,
                    Verdict.of(admitted.unpacked), receipt, stamp)


def _trust(path: Path) -> TrustStore | Path:
    """The trust store of an anchors file, kept with its chain cache
    (:func:`vbdt.trust.chain.anchors_file`). The path itself when it cannot be read: admission
    then says why."""
    try:
        return anchors_file(path)
    except VbdtError:
        return path


def arrival_receipt(answering: Answering, package: Document, sender: str, document_id: str,
                    stamp: dt.datetime) -> StatusMessage:
    """The 01 a receiver signs for a document it stored."""
    about = ResponseFor(organ_id=sender, code=package.code, promulgation_date=package.promulgation.date,
                        document_id=document_id)
    return StatusMessage(sender=answering.me, response_for=about, status_code=StatusCode.ARRIVED, timestamp=stamp,
                         staff_info=answering.staff)


def sign_job(key: SigningKey, package: Package) -> bytes:
    """The package signed (XML-DSig) with ``key``."""
    from vbdt.trust.xmldsig import sign

    return sign(package, key)


def prepare_job(sending: Sending, key: SigningKey, person: SigningKey | None, seal: SigningKey | None,
                document: Document, me: str) -> Prepared:
    """The content digest of ``document`` as given; then this agency's trace, and the package as
    it will be sent: checked (limits, schema), signed, then read into the model for the rules
    (directory included). A package the rules refuse was signed for nothing and is not sent.
    With PDFs to sign (``person``, ``seal``) the package is made by :func:`vbdt.trust.packaging.pack`
    once the document is validated."""
    from vbdt.edxml.model import VIETNAM_TZ, TraceHeader
    from vbdt.edxml.reader import parse_tree
    from vbdt.edxml.validation import check_tree, report_tree
    from vbdt.edxml.writer import add_trace, serialize, to_tree
    from vbdt.errors import ValidationError
    from vbdt.exchange.sending import digest_of
    from vbdt.trust.packaging import check_unique_names, pack
    from vbdt.trust.xmldsig import sign_tree

    root = to_tree(document)
    written = serialize(root)
    digest = digest_of(written)  # content_digest(document), of the one tree written
    try:
        if not document.trace or str(document.trace[-1].organ_id) != me:
            hop = TraceHeader(organ_id=me, timestamp=dt.datetime.now(VIETNAM_TZ))
            document = Document(**{**document.__dict__, "trace": [*document.trace, hop]})
            add_trace(root, hop)  # the tree of the document with its trace, not written again
            written = serialize(root)
        del root
        # The bytes as sent, parsed hardened and checked as a receiver will: the tree checked is
        # the tree signed. Signed before the model is read from it: reading moves the
        # attachments' text out of the tree.
        tree, findings = parse_tree(written, sending.limits, lenient=False)
        del written
        findings += check_tree(tree, lenient=False)
        signed: bytes | VbdtError | None = None
        if not findings and person is None and seal is None:
            try:
                check_unique_names(document.attachments)
                signed = sign_tree(tree, key)
            except VbdtError as exc:  # told after validation's findings, as a receiver orders them
                signed = exc
        report = report_tree(tree, findings, directory=sending.directory, limits=sending.limits)
        del tree
        if not report.valid:
            raise ValidationError(report.findings, source=str(document.document_id))
        if person is not None or seal is not None:  # PDFs to sign first: a new model, written again
            return Prepared(digest, pack(document, key, person=person, seal=seal))
        if isinstance(signed, VbdtError):
            raise signed
        if signed is None:  # never: check_tree's findings are errors when strict, so a valid report had none
            raise ValidationError(report.findings, source=str(document.document_id))
        return Prepared(digest, signed)
    except VbdtError as exc:  # raised by the caller once it knows the DocumentId is not a repeat
        return Prepared(digest, None, _portable(exc))


def warm_job(*values: object) -> None:
    """Nothing but what taking the contexts costs (keys loaded, the directory read) and, for an
    admission, its trust store read: paid when the client opens, not by the first messages."""
    for value in values:
        trust = getattr(value, "trust", None)
        if isinstance(trust, Path):
            _trust(trust)


# -- shipping what the jobs need to the worker processes --------------------------------------------

@dataclass(frozen=True)
class _KeyData:
    """A software key as DER, to load once in each worker."""

    private: bytes
    certificate: bytes
    chain: tuple[bytes, ...]


def _key_data(key: SigningKey) -> _KeyData | None:
    """The key as DER, or None for a key that never leaves this process (a hardware token's)."""
    try:
        private = key.private_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption())
    except Exception:  # a token key refuses to export (TokenRsaKey, TokenEcKey): sign here
        return None
    der = serialization.Encoding.DER
    return _KeyData(private, key.certificate.public_bytes(der), tuple(c.public_bytes(der) for c in key.chain))


def _revive(blob: bytes) -> object:
    value = pickle.loads(blob)
    if isinstance(value, _KeyData):
        private = serialization.load_der_private_key(value.private, None)
        return SigningKey(private, x509.load_der_x509_certificate(value.certificate),  # type: ignore[arg-type]
                          [x509.load_der_x509_certificate(c) for c in value.chain])
    return value


@dataclass(frozen=True)
class _Shipped:
    value: object
    token: str
    blob: bytes | None
    """Pickled for the workers; None when the value must stay in this process."""
    on_token: bool = False
    """A key that cannot leave its token: its signatures wait on the device, never on the event loop."""


@dataclass(frozen=True)
class _Missing:
    """A worker does not hold a context yet: send the call again with the contexts' bytes."""


@dataclass(frozen=True)
class _Raised:
    """An exception from a worker, as data: class, message and attributes."""

    module: str
    name: str
    message: str
    state: bytes

    def error(self) -> BaseException:
        try:
            cls = getattr(importlib.import_module(self.module), self.name)
            error: BaseException = cls.__new__(cls)
            BaseException.__init__(error, self.message)
            error.__dict__.update(pickle.loads(self.state))
            return error
        except Exception:
            return WorkerCrashed(f"a worker failed with {self.module}.{self.name}: {self.message}")


def _portable(exc: BaseException) -> _Raised:
    try:
        state = pickle.dumps(dict(vars(exc)))
    except Exception:
        state = pickle.dumps({})
    return _Raised(type(exc).__module__, type(exc).__qualname__, str(exc), state)


_CONTEXTS_MAX = 64
_CONTEXTS: Kept[str, object] = Kept(_CONTEXTS_MAX)  # in a worker process: token → what it stands for
_ABSENT = object()


def _entry(job: Callable[..., Any], tokens: tuple[str, ...], blobs: tuple[bytes | None, ...],
           args: tuple[Any, ...]) -> tuple[bool, Any] | _Missing:
    """In a worker process: the contexts by token (installed from ``blobs`` when given), then the job."""
    values = []
    for token, blob in zip(tokens, blobs, strict=True):
        value = _CONTEXTS.get(token, _ABSENT)
        if value is _ABSENT:
            if blob is None:
                return _Missing()
            value = _revive(blob)
            _CONTEXTS.put(token, value)
        values.append(value)
    try:
        return True, job(*values, *args)
    except BaseException as exc:
        return False, _portable(exc)


_READY = b"ready"


def _serve(conn: Connection) -> None:
    """A worker process: one job at a time from the pipe, its outcome back; ends when the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops the workers
    importlib.import_module("vbdt.exchange.pipeline")  # the heavy imports before the first job
    importlib.import_module("vbdt.exchange.answers")
    from vbdt.edxml.schemas import SchemaKind, schema

    for kind in SchemaKind:  # compiled once per process: not in the first jobs' time
        schema(kind)
    conn.send_bytes(_READY)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            job, tokens, blobs, args = pickle.loads(data)
        except Exception as exc:  # a job this process cannot import: told to the caller, not a crash
            outcome: tuple[bool, Any] | _Missing = (False, _portable(exc))
        else:
            outcome = _entry(job, tokens, blobs, args)
        try:
            reply = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a result that does not pickle: a bug, told as one
            reply = pickle.dumps((False, _portable(exc)), protocol=pickle.HIGHEST_PROTOCOL)
        conn.send_bytes(reply)


_DEPTH = 2  # jobs sent to one worker at a time: one running, one waiting in its pipe
_QUEUED_MAX = 32 * 1024  # bytes: a waiting job fits in the pipe's buffer (64 KiB on Linux)
_START_ATTEMPTS = 3  # worker processes that die before they are ready, in a row, before giving up


class _Died(Exception):
    """The worker process running a job died."""


@dataclass
class _Job:
    job: Callable[..., Any]
    contexts: tuple[_Shipped, ...]
    args: tuple[Any, ...]
    future: asyncio.Future[tuple[bool, Any] | _Missing]
    resend: bool = False
    """Send every context's bytes (the worker said it lacked one)."""
    queueable: bool = True
    """Small enough to wait in a busy worker's pipe (a big one would block the event loop on the write)."""


class _Process:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, context: multiprocessing.context.SpawnContext) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True, name="vbdt-worker")
        self.process.start()
        child.close()
        self.ready = False
        self.jobs: deque[_Job] = deque()
        """Sent to this worker and not answered yet, oldest first: the first is running, the next one
        (at most :data:`_DEPTH` in all) waits in the pipe so that the worker never waits for the event loop."""
        self.known: set[str] = set()
        """Tokens whose contexts this worker holds (sent to it already)."""


class _Pool:
    """``size`` worker processes, one job running in each (and one waiting), read on the event loop (no threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.loop = asyncio.get_running_loop()
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[_Process] = []
        self._queue: deque[_Job] = deque()
        self._closed = False
        self.started = 0
        """Worker processes started, first ones and replacements."""
        self._failed_starts = 0
        self._broken: UsageError | None = None
        self._all_ready = asyncio.Event()
        for _ in range(size):
            self._start()

    def _start(self) -> None:
        worker = _Process(self._context)
        self.started += 1
        self._processes.append(worker)
        try:
            self.loop.add_reader(worker.conn.fileno(), self._readable, worker)
        except NotImplementedError:  # pragma: no cover - a proactor loop (Windows)
            raise UsageError("worker processes need a selector event loop; use workers=1 here") from None

    async def ready(self) -> None:
        """Until every worker has imported vbdt and waits for jobs."""
        await self._all_ready.wait()
        if self._broken is not None:
            raise self._broken

    async def run(self, job: _Job) -> tuple[bool, Any] | _Missing:
        """The job's outcome; :class:`_Died` when its worker died running it."""
        if self._broken is not None:
            raise self._broken
        self._queue.append(job)
        self._dispatch()
        return await job.future

    def _dispatch(self) -> None:
        # Idle workers first, then a second job behind each running one: the worker starts it as soon
        # as it answers the first, without waiting for the event loop to read the answer.
        for depth in range(_DEPTH):
            for worker in list(self._processes):  # a worker found dead here is replaced in the list
                if not self._queue:
                    return
                if worker.ready and len(worker.jobs) == depth:
                    self._send(worker)

    def _send(self, worker: _Process) -> None:
        """The next job of the queue to ``worker`` (if it may wait there)."""
        job = self._queue.popleft()
        while job.future.done() and self._queue:  # callers cancelled while their jobs waited
            job = self._queue.popleft()
        if job.future.done():
            return
        if worker.jobs and not job.queueable:
            self._queue.appendleft(job)
            return
        blobs = tuple(c.blob if job.resend or c.token not in worker.known else None for c in job.contexts)
        try:
            data = pickle.dumps((job.job, tuple(c.token for c in job.contexts), blobs, job.args),
                                protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # arguments that do not pickle: a bug of the caller
            job.future.set_exception(exc)
            return
        if worker.jobs and len(data) > _QUEUED_MAX:  # the pipe could not take it without blocking the loop
            job.queueable = False
            self._queue.appendleft(job)
            return
        worker.jobs.append(job)
        worker.known.update(c.token for c in job.contexts)
        try:
            # idle, the worker is reading; busy, what waits for it is within the pipe's buffer
            worker.conn.send_bytes(data)
        except OSError:
            self._lost(worker)

    def _readable(self, worker: _Process) -> None:
        try:
            data = worker.conn.recv_bytes()
        except (EOFError, OSError):
            self._lost(worker)
            return
        if not worker.ready:
            worker.ready = data == _READY
            self._failed_starts = 0
            if all(w.ready for w in self._processes):
                self._all_ready.set()
        else:
            job = worker.jobs.popleft() if worker.jobs else None
            if job is not None and not job.future.done():
                try:
                    job.future.set_result(pickle.loads(data))
                except Exception as exc:  # pragma: no cover - what the worker pickled always loads
                    job.future.set_exception(exc)
        self._dispatch()

    def _lost(self, worker: _Process) -> None:
        """A worker died (or its pipe broke): its job fails with _Died, a new process takes its place."""
        self._forget(worker)
        jobs = list(worker.jobs)
        worker.jobs.clear()
        # Jobs run one after the other: the oldest unanswered one was running; those behind it never
        # started, and go back to the front of the queue as they were.
        for waiting in reversed(jobs[1:]):
            if not waiting.future.done():
                self._queue.appendleft(waiting)
        job = jobs[0] if jobs else None
        if job is not None and not job.future.done():
            job.future.set_exception(_Died(f"worker process {worker.process.pid} died "
                                           f"(exit code {worker.process.exitcode})"))
        if not worker.ready:
            self._failed_starts += 1
            if self._failed_starts >= _START_ATTEMPTS:  # never respawn in a loop: tell the application
                self._fail(UsageError(
                    f"worker processes die as they start (exit code {worker.process.exitcode}); the main module "
                    "must be importable without side effects (put its start under if __name__ == \"__main__\":), "
                    "or use workers=1"))
                return
        if not self._closed:
            self._start()
        self._dispatch()

    def _fail(self, error: UsageError) -> None:
        self._broken = error
        self._closed = True
        for worker in list(self._processes):
            self._forget(worker)
            worker.process.terminate()
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(error)
        self._all_ready.set()

    def _forget(self, worker: _Process) -> None:
        with contextlib.suppress(ValueError):
            self._processes.remove(worker)
        with contextlib.suppress(Exception):
            self.loop.remove_reader(worker.conn.fileno())
        with contextlib.suppress(Exception):
            worker.conn.close()
        with contextlib.suppress(Exception):
            worker.process.join(0.1)  # reap it; a process that is only now exiting is reaped at close

    def pids(self) -> list[int]:
        """The worker processes now (for tests)."""
        return [w.process.pid for w in self._processes if w.process.pid is not None]

    def close(self) -> None:
        """Close the pipes (the workers end), end those that do not, fail what waits."""
        self._closed = True
        workers = list(self._processes)
        for worker in workers:
            self._forget(worker)
            for job in worker.jobs:
                if not job.future.done():
                    job.future.set_exception(UsageError("these workers were closed"))
        for worker in workers:
            if worker.process.is_alive():  # still in a job: its delivery comes back anyway
                worker.process.terminate()
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(UsageError("these workers were closed"))


_NONE = _Shipped(None, "none", pickle.dumps(None))


INLINE_BYTES = 16 * 1024
"""With one worker, a job on a message up to this many bytes runs on the event loop (a
millisecond or two). A PDF signature takes more room than this (an RSA seal alone made a 20 KB
package), so the admissions that validate PDF signatures (17 ms for a person and a seal) run in a
thread. Size does not bound every cost a peer can make a receiver pay (a certificate loop in
KeyInfo made the chain builder run for half a second before keys were bounded,
:func:`vbdt.trust.chain.check_key_cost`), hence :data:`INLINE_SLOW`."""
INLINE_SLOW = 0.02
"""Seconds of the event loop thread's CPU (:mod:`vbdt.exchange.loopclock`: an admission a full
garbage collection fell into is not measured):
two admissions of the same publisher on the loop that took more, within :data:`INLINE_PENALTY`
seconds, or one that took more than :data:`INLINE_SLOW_ONCE`, send that publisher's next messages
to a thread for :data:`INLINE_PENALTY` seconds: a peer can hold the loop for a message or two, not
for a stream of them. A host's hiccup happens once (one ordinary 8 KB document in 3,500 took 24 ms
of CPU in a five-round benchmark run: a page fault, a cold cache), a costly peer every time. (With
wall time, 68 ordinary 5 KB receipts of one run were taken for slow ones; with full collections
counted, an 8 KB document during a 34 ms collection.)"""
INLINE_SLOW_ONCE = 0.1
"""Seconds: an admission on the loop that took more sends its publisher to a thread at once."""
INLINE_PENALTY = 300.0
# What a written package costs besides its attachments' base64: the header, and each To or
# TraceHeader (an organisation written out) a few hundred bytes.
_HEADER_BYTES, _ENTRY_BYTES = 4096, 300
_SLOW_PUBLISHERS_KEPT = 4096


class Workers:
    """Signing and verifying for one or more agency clients: with ``size == 1`` on the event loop
    for a small message and in a thread otherwise (see the module), or a pool of ``size``
    processes. Share one between the clients of a process (``AgencyClient(workers=pool)``), or give
    each client its own (``workers=n``). See the module for what crosses. The processes belong to
    the event loop that first used them.

    ``inline_bytes`` (one worker only): the largest message whose job runs on the event loop;
    ``0`` runs every job in a thread."""

    def __init__(self, size: int = 1, *, inline_bytes: int = INLINE_BYTES) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise UsageError(f"workers must be a whole number of at least 1, not {size!r}")
        if not isinstance(inline_bytes, int) or isinstance(inline_bytes, bool) or inline_bytes < 0:
            raise UsageError(f"inline_bytes must be a whole number of bytes, not {inline_bytes!r}")
        self.size = size
        self.inline_bytes = inline_bytes
        self._slow: Kept[str | None, float] = Kept(_SLOW_PUBLISHERS_KEPT)  # publisher -> in a thread until (monotonic)
        self._strikes: Kept[str | None, float] = Kept(_SLOW_PUBLISHERS_KEPT)  # publisher -> last slow admission
        self._pool: _Pool | None = None
        self._shipped: KeptFor[_Shipped] = KeptFor(_CONTEXTS_MAX)
        self._closed = False

    @property
    def closed(self) -> bool:
        """:meth:`close` was called: no more jobs."""
        return self._closed

    @property
    def processes(self) -> bool:
        """Jobs run in worker processes (``size > 1``)."""
        return self.size > 1

    @property
    def restarts(self) -> int:
        """Worker processes started again after one died."""
        return 0 if self._pool is None else self._pool.started - self.size

    def pids(self) -> list[int]:
        """The worker processes' ids (none before the first job or :meth:`start`, or with one worker)."""
        return [] if self._pool is None else self._pool.pids()

    async def start(self) -> None:
        """Start the worker processes now and wait until they are ready (the first jobs do not wait
        for them to import vbdt)."""
        if self.processes and not self._closed:
            await self._processes().ready()

    async def warm(self, *values: object) -> None:
        """Hand ``values`` (what the jobs of a client take: its admission, keys, ...) to every worker
        process now, so that loading them is not in the time of the first messages. Nothing to do
        in a thread (one worker)."""
        if not self.processes or self._closed:
            return
        contexts = tuple(self._ship(v) for v in values if v is not None)
        if any(c.blob is None for c in contexts):  # a key that stays in this process: nothing to send
            contexts = tuple(c for c in contexts if c.blob is not None)
        await asyncio.gather(*(self._call(warm_job, contexts) for _ in range(self.size)))

    async def admit(self, admission: Admission, body: bytes, *, me: str, publisher: str | None,
                    answering: Answering | None = None, key: SigningKey | None = None) -> Accepted | Refusal:
        """:func:`admit_job` (a document's 01 signed too when ``answering`` and ``key`` are given)."""
        contexts = (self._ship(admission), self._ship(answering), self._ship(key))
        until = self._slow.get(publisher)
        here = self._here(contexts, len(body) <= self.inline_bytes and (until is None or time.monotonic() >= until))
        began = loopclock.mark() if here else None
        try:
            return await self._call(admit_job, contexts, body, me, publisher, inline=here)
        finally:
            held = loopclock.cpu_seconds(began) if began is not None else None
            if held is not None and held > INLINE_SLOW:
                self._held_too_long(publisher, held, len(body))

    def _held_too_long(self, publisher: str | None, held: float, size: int) -> None:
        """A strike against ``publisher``; the second within :data:`INLINE_PENALTY` (or one over
        :data:`INLINE_SLOW_ONCE`) sends its messages to a thread (see :data:`INLINE_SLOW`)."""
        now = time.monotonic()
        before = self._strikes.get(publisher)
        if held <= INLINE_SLOW_ONCE and (before is None or now - before > INLINE_PENALTY):
            self._strikes.put(publisher, now)
            log.info("admitting a %d-byte message from %s held the event loop %.0f ms (once: noted)", size, publisher,
                     held * 1000)
            return
        log.warning("admitting a %d-byte message from %s held the event loop %.0f ms: its next messages go to a "
                    "thread for %.0f s", size, publisher, held * 1000, INLINE_PENALTY)
        self._slow.put(publisher, now + INLINE_PENALTY)

    async def sign(self, key: SigningKey, package: Package) -> bytes:
        """``package`` signed with ``key``."""
        return await self._call(sign_job, (self._ship(key),), package, inline=self._small(package))

    async def prepare(self, sending: Sending, key: SigningKey, person: SigningKey | None, seal: SigningKey | None,
                      document: Document, me: str) -> Prepared:
        """:func:`prepare_job`."""
        contexts = (self._ship(sending), self._ship(key), self._ship(person), self._ship(seal))
        # PDFs to sign (person, seal) take tens of milliseconds: never on the loop
        inline = person is None and seal is None and self._small(document)
        return await self._call(prepare_job, contexts, document, me, inline=inline)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Any job: ``function`` (module level, importable by the worker processes) with picklable
        ``args`` and result, run as the exchange's own jobs are (a thread, or a worker process)."""
        return await self._call(function, (), *args)

    async def close(self) -> None:
        """Stop the processes (jobs still running are abandoned: their deliveries come back)."""
        self._closed = True
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- internals --------------------------------------------------------------------------------
    def _processes(self) -> _Pool:
        if self._pool is None:
            self._pool = _Pool(self.size)
        return self._pool

    def _small(self, package: Package) -> bool:
        """Whether the package's job is small enough for the event loop: its written size, as
        estimated from its attachments (base64), its recipients and its trace, within
        :attr:`inline_bytes`."""
        total = _HEADER_BYTES + _ENTRY_BYTES * len(package.trace)
        if isinstance(package, Document):
            total += _ENTRY_BYTES * len(package.recipients)
            try:
                for attachment in package.attachments:
                    if total > self.inline_bytes:
                        break
                    total += attachment.size * 4 // 3
            except (OSError, VbdtError):  # a file gone: the job says so, in a thread as ever
                return False
        return total <= self.inline_bytes

    def _ship(self, value: object) -> _Shipped:
        """``value`` with its token and bytes for the workers, made once per object."""
        if value is None:
            return _NONE
        held = self._shipped.get(value)
        if held is not None:
            return held
        blob: bytes | None = None
        on_token = False
        if isinstance(value, SigningKey):
            data = _key_data(value)
            on_token = data is None
            if self.processes and data is not None:
                blob = pickle.dumps(data)
        elif self.processes:
            blob = pickle.dumps(value)
        shipped = _Shipped(value, uuid.uuid4().hex, blob, on_token)
        self._shipped.put(value, shipped)
        return shipped

    def _here(self, contexts: tuple[_Shipped, ...], inline: bool) -> bool:
        """Whether a job runs on the event loop: one worker, a job ``inline`` (small), no key on a token."""
        return not self.processes and inline and not any(c.on_token for c in contexts)

    async def _call(self, job: Callable[..., T], contexts: tuple[_Shipped, ...], *args: Any, inline: bool = False) -> T:
        if self._closed:
            raise UsageError("these workers were closed")
        if self._here(contexts, inline):
            return job(*(c.value for c in contexts), *args)  # a small job: cheaper here than handed over
        if not self.processes or any(c.blob is None for c in contexts):  # a thread (or a key that stays here)
            return await asyncio.to_thread(job, *(c.value for c in contexts), *args)
        outcome = await self._attempt(job, contexts, args)
        ok, value = outcome
        if ok:
            return value  # type: ignore[no-any-return]
        raise value.error()  # a _Raised

    async def _attempt(self, job: Callable[..., Any], contexts: tuple[_Shipped, ...],
                       args: tuple[Any, ...]) -> tuple[bool, Any]:
        """The job in a worker; once more in a fresh one if its worker died; WorkerCrashed if that one
        dies too. With one job per worker, the job that was running is the one that killed it, or
        the process was killed from outside (then the second run succeeds)."""
        pool = self._processes()
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            resend = False
            while True:
                try:
                    outcome = await pool.run(_Job(job, contexts, args, loop.create_future(), resend))
                except _Died as exc:
                    if attempt == 2:
                        raise WorkerCrashed(f"{job.__name__}: {exc}, and its replacement died running it again "
                                            "(killed, out of memory, or a crash in a C library)") from None
                    log.warning("%s: %s; running it again in a fresh worker", job.__name__, exc)
                    break
                if isinstance(outcome, _Missing):  # the worker had forgotten a context: send them all
                    resend = True
                    continue
                return outcome
        raise AssertionError("unreachable")  # pragma: no cover
