"""One SQLite file shared by the threads of a process: the ledger's and the bulk journal's storage.

WAL with ``synchronous = NORMAL`` (``durability="normal"``, the default): a committed transaction
survives the death of the process (the crash guarantees of docs/exchange.md); after a power loss
the last transactions may be lost, never half of one. ``durability="full"`` (``synchronous =
FULL``) syncs the WAL at every commit, so a committed transaction survives a power loss too, at
the cost of one fsync per commit (see "What survives what" in docs/exchange.md). Every SQLite or
file-system failure is a :class:`~vbdt.errors.LedgerError` naming the file.

Group commit: inside :meth:`SqliteFile.group`, every :meth:`SqliteFile.transaction` of the same
thread is a savepoint of one outer transaction, committed once when the group ends. A write that
fails is rolled back to its savepoint and fails alone; a failing commit fails the whole group.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from vbdt.errors import LedgerError

__all__ = ["DURABILITY", "Durability", "SqliteFile"]

Durability = Literal["normal", "full"]
"""``normal``: WAL + ``synchronous=NORMAL`` (survives the process dying); ``full``: WAL +
``synchronous=FULL`` (survives a power loss too; one fsync per commit)."""

DURABILITY: dict[str, str] = {"normal": "NORMAL", "full": "FULL"}
"""The ``PRAGMA synchronous`` of each durability."""


class SqliteFile:
    """A SQLite connection behind a lock, with transactions and queries that fail as ``LedgerError``."""

    def __init__(self, path: str | Path, schema: str, *, what: str,
                 added_columns: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                 durability: Durability = "normal") -> None:
        """Open (or create) ``path`` with ``schema``; ``added_columns`` (table → (column, declaration))
        migrates a file written by an older version. ``what`` names the file in errors."""
        self.path = str(path)
        self.what = what
        if durability not in DURABILITY:
            raise LedgerError(f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}")
        self.durability: Durability = durability
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.executescript(schema)
            for table, columns in (added_columns or {}).items():
                present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                for column, declaration in columns:
                    if column not in present:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            # WAL + NORMAL: safe against process death; FULL: against power loss too
            self._db.execute(f"PRAGMA synchronous = {DURABILITY[durability]}")
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open the {what} {self.path}: {exc}") from None
        # Re-entrant: the thread that holds a group opens its transactions (savepoints) inside it.
        self._lock = threading.RLock()
        self._depth = 0  # 0: no transaction; 1: the outer one; more: savepoints inside it
        self._broken = False  # SQLite rolled the outer transaction back by itself (disk full, I/O error)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), rolled back on any exception; inside a
        :meth:`group` of this thread, a savepoint of the group's transaction."""
        with self.group():
            yield self._db

    @contextmanager
    def group(self) -> Iterator[None]:
        """One transaction for every :meth:`transaction` this thread opens inside the block (group
        commit): each is a savepoint, rolled back alone when it fails; the block commits them all
        at once, or none (:class:`~vbdt.errors.LedgerError` when the commit fails). Nested groups
        are savepoints too. Other threads wait until the group ends."""
        with self._lock:
            outer = self._depth == 0
            if not outer and self._broken:
                raise LedgerError(f"{self.what} {self.path}: the transaction of this group was rolled back")
            savepoint = f"vbdt_{self._depth}"
            try:
                self._db.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {savepoint}")
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.what} {self.path}: {exc}") from None
            self._depth += 1
            try:
                try:
                    yield
                except BaseException as exc:
                    self._undo(outer, savepoint)
                    if isinstance(exc, sqlite3.Error):
                        raise LedgerError(f"{self.what} {self.path}: {exc}") from None
                    raise
                try:
                    if outer and self._broken:
                        raise sqlite3.OperationalError("a write of this group failed and SQLite rolled the whole "
                                                       "transaction back; nothing of it was committed")
                    self._db.execute("COMMIT" if outer else f"RELEASE {savepoint}")
                except sqlite3.Error as exc:
                    self._undo(outer, savepoint)
                    raise LedgerError(f"{self.what} {self.path}: {exc}") from None
            finally:
                self._depth -= 1
                if outer:
                    self._broken = False

    def _undo(self, outer: bool, savepoint: str) -> None:
        """Roll back the outer transaction, or this savepoint only (the group goes on without it)."""
        if not self._db.in_transaction:  # SQLite already rolled everything back (SQLITE_FULL, I/O error)
            self._broken = not outer
            return
        try:
            if outer:
                self._db.execute("ROLLBACK")
            else:
                self._db.execute(f"ROLLBACK TO {savepoint}")
                self._db.execute(f"RELEASE {savepoint}")
        except sqlite3.Error:
            self._broken = not outer

    def query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of one read (inside this thread's group: what the group wrote so far, too)."""
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.what} {self.path}: {exc}") from None

    def close(self) -> None:
        """Release the file."""
        with self._lock:
            self._db.close()
