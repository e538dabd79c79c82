"""The DMS's own incoming-document book (sổ văn bản đến), in SQLite: what a clerk sees.

vbdt keeps its ledger; the DMS keeps this. An item is acknowledged to vbdt only after its row is
committed here, so a crash in between hands the item over again (``redelivered``) and
:meth:`Register.enter` finds the row: nothing is registered twice, nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incoming (
    number INTEGER PRIMARY KEY AUTOINCREMENT,          -- số đến: the book's own running number
    sender TEXT NOT NULL, document_id TEXT NOT NULL,
    code TEXT NOT NULL, subject TEXT NOT NULL, kind TEXT NOT NULL,
    answers TEXT,                                      -- the DocumentId this one answers (ResponseFor), if any
    pdf_ok INTEGER NOT NULL,                           -- every PDF original-valid at receipt
    sealed_by TEXT NOT NULL,                           -- the agencies whose seals the PDFs carry
    received_at TEXT NOT NULL, state TEXT NOT NULL,    -- registered, 03, 04, 05, 06, 02
    handler TEXT, relayed_as TEXT, note TEXT,
    UNIQUE (sender, document_id)
);
CREATE TABLE IF NOT EXISTS refused (
    at TEXT NOT NULL, publisher TEXT, stage TEXT NOT NULL, reason TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Entry:
    """One row of the book."""

    number: int
    sender: str
    document_id: str
    code: str
    subject: str
    kind: str
    answers: str | None
    pdf_ok: bool
    sealed_by: str
    received_at: str
    state: str
    handler: str | None
    relayed_as: str | None
    note: str | None


class Register:
    """The book of one agency, in one SQLite file (one connection, used from the event loop's thread)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Release the file."""
        self.db.close()

    def enter(self, *, sender: str, document_id: str, code: str, subject: str, kind: str, answers: str | None,
              pdf_ok: bool, sealed_by: str, received_at: dt.datetime) -> bool:
        """Register a received document; False when it is in the book already (handed again after a crash)."""
        if self.get(sender, document_id) is not None:  # checked first: an ignored INSERT would use up a number
            return False
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO incoming (sender, document_id, code, subject, kind, answers, pdf_ok, sealed_by, "
            "received_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'registered')",
            (sender, document_id, code, subject, kind, answers, int(pdf_ok), sealed_by, received_at.isoformat()),
        )
        return cursor.rowcount == 1

    def get(self, sender: str, document_id: str) -> Entry | None:
        """The row of a document, if registered."""
        rows = self._select("WHERE sender = ? AND document_id = ?", (sender, document_id))
        return rows[0] if rows else None

    def entries(self) -> list[Entry]:
        """The whole book, in the order of registration."""
        return self._select("ORDER BY number", ())

    def answering(self, document_id: str) -> list[Entry]:
        """The documents registered as answers (reports) to ``document_id``."""
        return self._select("WHERE answers = ? ORDER BY number", (document_id,))

    def relayed_as(self, relay_id: str) -> Entry | None:
        """The document that was relayed as ``relay_id``."""
        rows = self._select("WHERE relayed_as = ?", (relay_id,))
        return rows[0] if rows else None

    def advance(self, sender: str, document_id: str, state: str, *, handler: str | None = None,
                relayed_as: str | None = None, note: str | None = None) -> None:
        """Record the step the clerk (or the DMS) took."""
        self.db.execute(
            "UPDATE incoming SET state = ?, handler = COALESCE(?, handler), relayed_as = COALESCE(?, relayed_as), "
            "note = COALESCE(?, note) WHERE sender = ? AND document_id = ?",
            (state, handler, relayed_as, note, sender, document_id),
        )

    def refuse(self, publisher: str | None, stage: str, reason: str) -> None:
        """What the exchange refused on this agency's behalf ("we refused X because Y")."""
        self.db.execute("INSERT INTO refused VALUES (?, ?, ?, ?)",
                        (dt.datetime.now(dt.UTC).isoformat(), publisher, stage, reason))

    def refusals(self) -> list[tuple[str | None, str, str]]:
        """Every refusal: publisher, stage, reason."""
        return [(str(p) if p is not None else None, str(s), str(r))
                for p, s, r in self.db.execute("SELECT publisher, stage, reason FROM refused ORDER BY rowid")]

    def _select(self, where: str, args: tuple[object, ...]) -> list[Entry]:
        rows = self.db.execute(
            "SELECT number, sender, document_id, code, subject, kind, answers, pdf_ok, sealed_by, received_at, state, "
            f"handler, relayed_as, note FROM incoming {where}", args).fetchall()
        return [Entry(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), r[6], bool(r[7]), str(r[8]),
                      str(r[9]), str(r[10]), r[11], r[12], r[13]) for r in rows]
