"""The journal of bulk runs: what each run must send, and what the broker confirmed, recipient by recipient.

A bulk run (:mod:`vbdt.exchange.bulk`) writes its plan here before it publishes anything: the run,
each document **once** (its ledger record; its signed envelopes, one per group of recipients, each
listing only its group in ``To``: the parts) and one row per recipient, ``pending``, naming its part.
Every outcome the broker gives is written as it comes: ``confirmed`` (the broker has it: never
published again), ``unroutable`` (no inbox), ``failed`` (refused for good), or left ``pending``
(not confirmed: broker away, inbox full, process killed). Resuming a run publishes only the
``pending`` rows, so a recipient whose copy the broker confirmed never gets a second one; a copy
in flight when the process died may be published again, and the receiver recognises it
(same DocumentId, same signed digest) and hands it to its application once.

One SQLite file of its own (WAL, like the ledger), next to the agency's ledger by default
(``.vbdt/<OrganId>.bulk.db``): the ledger's schema is untouched, and a run's rows survive the
ledger being moved to another store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from vbdt.edxml.model import VIETNAM_TZ
from vbdt.errors import UsageError
from vbdt.exchange.sqlite import SqliteFile

__all__ = ["BulkJournal", "JournalDocument", "JournalRecipient", "RecipientState", "RunInfo", "RunState", "journal_path_for"]


class RecipientState(StrEnum):
    """What the broker said of one recipient's copy."""

    PENDING = "pending"
    """Not confirmed yet: a resume publishes it."""
    CONFIRMED = "confirmed"
    """The broker has it durably: never published again by this run."""
    UNROUTABLE = "unroutable"
    """No inbox on the broker for this recipient."""
    FAILED = "failed"
    """The broker will never take it (too large, refused)."""


class RunState(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    """A process is sending it (or died doing so: :attr:`RunInfo.state` then says interrupted)."""
    INTERRUPTED = "interrupted"
    """Stopped with recipients not confirmed: ``vbdt bulk resume`` finishes it."""
    DONE = "done"
    """Every recipient confirmed, unroutable or failed."""


@dataclass(frozen=True)
class RunInfo:
    """One run as ``vbdt bulk list`` shows it."""

    run_id: str
    organ_id: str
    state: RunState
    created_at: dt.datetime
    updated_at: dt.datetime
    documents: int
    counts: dict[str, int]
    """Recipients per :class:`RecipientState` value (all documents)."""
    problems: dict[str, str]
    """Selectors or manifest rows left out, with the reason."""

    @property
    def total(self) -> int:
        """Copies to deliver (recipients, all documents)."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class JournalDocument:
    """One signed package of a run."""

    document_id: str
    digest: str
    size: int
    record: dict[str, Any]
    """The ledger's record of the document (``SentDocument`` fields, dates as ISO text)."""
    ledger_recorded: bool
    parts: int = 1
    """Signed envelopes of the document (one per group of recipients); ``size`` is the first's."""


@dataclass(frozen=True)
class JournalRecipient:
    """One copy of a run."""

    document_id: str
    recipient: str
    state: RecipientState
    reason: str | None
    attempts: int
    updated_at: dt.datetime


_SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS bulk_runs (
    run_id TEXT PRIMARY KEY, organ_id TEXT NOT NULL, state TEXT NOT NULL, pid INTEGER, problems TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bulk_documents (
    run_id TEXT NOT NULL REFERENCES bulk_runs(run_id), document_id TEXT NOT NULL, seq INTEGER NOT NULL,
    body BLOB NOT NULL, digest TEXT NOT NULL, record TEXT NOT NULL, ledger_recorded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, document_id));
CREATE TABLE IF NOT EXISTS bulk_recipients (
    run_id TEXT NOT NULL, document_id TEXT NOT NULL, recipient TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL, PRIMARY KEY (run_id, document_id, recipient));
CREATE INDEX IF NOT EXISTS bulk_pending ON bulk_recipients (run_id, document_id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS bulk_parts (
    run_id TEXT NOT NULL, document_id TEXT NOT NULL, part INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (run_id, document_id, part));
"""
# Part 0's body is bulk_documents.body (a journal written before parts existed has only that one);
# bulk_parts holds parts 1 and up. A recipient row names its part.
_ADDED_COLUMNS = {"bulk_recipients": (("part", "INTEGER NOT NULL DEFAULT 0"),)}


def journal_path_for(ledger_path: str | Path) -> str:
    """The journal beside a ledger file: ``X.db`` → ``X.bulk.db`` (``:memory:`` stays in memory)."""
    text = str(ledger_path)
    if text == ":memory:":
        return text
    path = Path(text)
    return str(path.with_name(f"{path.stem}.bulk.db"))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _local(text: object) -> dt.datetime:
    return dt.datetime.fromisoformat(str(text)).astimezone(VIETNAM_TZ)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


class BulkJournal:
    """The runs of one agency, in one SQLite file (``":memory:"`` for a throwaway one)."""

    def __init__(self, path: str | Path) -> None:
        self._file = SqliteFile(path, _SCHEMA, what="bulk journal", added_columns=_ADDED_COLUMNS)
        self.path = self._file.path

    # -- writing ---------------------------------------------------------------------------
    def create_run(self, organ_id: str, problems: dict[str, str]) -> str:
        """A new run of ``organ_id`` (state running, owned by this process); its id."""
        now = dt.datetime.now(VIETNAM_TZ)
        run_id = f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        with self._file.transaction() as db:
            db.execute("INSERT INTO bulk_runs (run_id, organ_id, state, pid, problems, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (run_id, organ_id, RunState.RUNNING.value, os.getpid(), json.dumps(problems, ensure_ascii=False),
                        _now(), _now()))
        return run_id

    def add_document(self, run_id: str, document_id: str, parts: Sequence[tuple[bytes, Sequence[str]]], digest: str,
                     record: dict[str, Any]) -> None:
        """A document's signed envelopes (``parts``: each body with the recipients it lists) and one
        pending row per recipient naming its part: one transaction."""
        if not parts:
            raise UsageError(f"{document_id}: a document of a bulk run needs at least one signed envelope")
        now = _now()
        with self._file.transaction() as db:
            seq = db.execute("SELECT COUNT(*) FROM bulk_documents WHERE run_id = ?", (run_id,)).fetchone()[0]
            db.execute("INSERT INTO bulk_documents (run_id, document_id, seq, body, digest, record) VALUES (?, ?, ?, ?, ?, ?)",
                       (run_id, document_id, seq, parts[0][0], digest, json.dumps(record, ensure_ascii=False)))
            db.executemany("INSERT INTO bulk_parts (run_id, document_id, part, body) VALUES (?, ?, ?, ?)",
                           [(run_id, document_id, part, body) for part, (body, _) in enumerate(parts) if part])
            db.executemany("INSERT OR IGNORE INTO bulk_recipients (run_id, document_id, recipient, state, updated_at, part) "
                           "VALUES (?, ?, ?, 'pending', ?, ?)",
                           [(run_id, document_id, r, now, part) for part, (_, group) in enumerate(parts) for r in group])

    def mark(self, run_id: str, document_id: str, outcomes: Iterable[tuple[str, RecipientState, str | None]]) -> None:
        """Record the broker's outcome for recipients; a confirmed row never goes back to pending."""
        now = _now()
        with self._file.transaction() as db:
            db.executemany(
                "UPDATE bulk_recipients SET state = ?, reason = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE run_id = ? AND document_id = ? AND recipient = ? AND state != 'confirmed'",
                [(state.value, reason, now, run_id, document_id, recipient) for recipient, state, reason in outcomes])
            db.execute("UPDATE bulk_runs SET updated_at = ? WHERE run_id = ?", (now, run_id))

    def ledger_recorded(self, run_id: str, document_id: str) -> None:
        """The agency's ledger holds the document and its deliveries."""
        with self._file.transaction() as db:
            db.execute("UPDATE bulk_documents SET ledger_recorded = 1 WHERE run_id = ? AND document_id = ?", (run_id, document_id))

    def set_state(self, run_id: str, state: RunState) -> None:
        """The run is running (in this process), interrupted or done."""
        with self._file.transaction() as db:
            db.execute("UPDATE bulk_runs SET state = ?, pid = ?, updated_at = ? WHERE run_id = ?",
                       (state.value, os.getpid() if state is RunState.RUNNING else None, _now(), run_id))

    def claim(self, run_id: str) -> None:
        """Take a run over to resume it: UsageError when a live process is sending it."""
        with self._file.transaction() as db:
            row = db.execute("SELECT state, pid FROM bulk_runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise UsageError(f"no bulk run {run_id!r} in {self.path}")
            if row[0] == RunState.RUNNING.value and row[1] != os.getpid() and _alive(row[1]):
                raise UsageError(f"bulk run {run_id} is being sent by process {row[1]}; wait for it or stop it first")
            db.execute("UPDATE bulk_runs SET state = ?, pid = ?, updated_at = ? WHERE run_id = ?",
                       (RunState.RUNNING.value, os.getpid(), _now(), run_id))

    # -- reading ---------------------------------------------------------------------------
    def run(self, run_id: str) -> RunInfo:
        """One run; UsageError when there is none of that id."""
        for info in self._runs("WHERE r.run_id = ?", (run_id,)):
            return info
        raise UsageError(f"no bulk run {run_id!r} in {self.path}")

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        return self._runs("", ())

    def _runs(self, where: str, args: Sequence[object]) -> list[RunInfo]:
        rows = self._file.query(f"SELECT r.run_id, r.organ_id, r.state, r.pid, r.problems, r.created_at, r.updated_at, "
                           f"(SELECT COUNT(*) FROM bulk_documents d WHERE d.run_id = r.run_id) "
                           f"FROM bulk_runs r {where} ORDER BY r.rowid", args)
        out = []
        for run_id, organ_id, state, pid, problems, created, updated, documents in rows:
            counts = dict.fromkeys((s.value for s in RecipientState), 0)
            for value, n in self._file.query("SELECT state, COUNT(*) FROM bulk_recipients WHERE run_id = ? GROUP BY state", (run_id,)):
                counts[str(value)] = int(n)
            run_state = RunState(str(state))
            if run_state is RunState.RUNNING and not _alive(pid):
                run_state = RunState.INTERRUPTED  # its process died: a resume finishes it
            out.append(RunInfo(str(run_id), str(organ_id), run_state, _local(created), _local(updated), int(documents), counts,
                               json.loads(problems)))
        return out

    def documents(self, run_id: str) -> list[JournalDocument]:
        """The run's packages, in the order they were planned (bodies left out)."""
        rows = self._file.query("SELECT document_id, digest, length(body), record, ledger_recorded, 1 + (SELECT COUNT(*) "
                                "FROM bulk_parts p WHERE p.run_id = d.run_id AND p.document_id = d.document_id) "
                                "FROM bulk_documents d WHERE run_id = ? ORDER BY seq", (run_id,))
        return [JournalDocument(str(d), str(g), int(n), json.loads(r), bool(lr), int(k)) for d, g, n, r, lr, k in rows]

    def body(self, run_id: str, document_id: str, part: int = 0) -> bytes:
        """One signed envelope of a document (the one listing the recipients of ``part``), as published."""
        if part == 0:
            rows = self._file.query("SELECT body FROM bulk_documents WHERE run_id = ? AND document_id = ?", (run_id, document_id))
        else:
            rows = self._file.query("SELECT body FROM bulk_parts WHERE run_id = ? AND document_id = ? AND part = ?",
                                    (run_id, document_id, part))
        if not rows:
            raise UsageError(f"no document {document_id} (part {part}) in bulk run {run_id}")
        return bytes(rows[0][0])

    def parts(self, run_id: str, document_id: str) -> dict[str, int]:
        """The part (signed envelope) of each recipient of a document."""
        rows = self._file.query("SELECT recipient, part FROM bulk_recipients WHERE run_id = ? AND document_id = ?",
                                (run_id, document_id))
        return {str(r): int(p) for r, p in rows}

    def pending(self, run_id: str, document_id: str) -> list[str]:
        """Recipients of a document the broker has not confirmed (nor refused), in plan order."""
        rows = self._file.query("SELECT recipient FROM bulk_recipients WHERE run_id = ? AND document_id = ? AND state = 'pending' "
                           "ORDER BY rowid", (run_id, document_id))
        return [str(r[0]) for r in rows]

    def states(self, run_id: str, document_id: str) -> list[tuple[str, RecipientState, str | None]]:
        """(recipient, state, reason) of every copy of one document, in plan order: what a run's
        publishing needs, read without the rest (one row per recipient of a directive to thousands)."""
        rows = self._file.query("SELECT recipient, state, reason FROM bulk_recipients WHERE run_id = ? AND document_id = ? "
                                "ORDER BY rowid", (run_id, document_id))
        states = {s.value: s for s in RecipientState}
        return [(str(r), states[str(s)], None if why is None else str(why)) for r, s, why in rows]

    def recipients(self, run_id: str) -> list[JournalRecipient]:
        """Every copy of the run, in plan order."""
        rows = self._file.query("SELECT document_id, recipient, state, reason, attempts, updated_at FROM bulk_recipients "
                           "WHERE run_id = ? ORDER BY rowid", (run_id,))
        return [JournalRecipient(str(d), str(r), RecipientState(str(s)), None if why is None else str(why), int(n), _local(at))
                for d, r, s, why, n, at in rows]

    def close(self) -> None:
        """Release the file."""
        self._file.close()
