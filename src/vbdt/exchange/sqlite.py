"""One SQLite file shared by the threads of a process: the ledger's and the bulk journal's storage.

WAL with ``synchronous = NORMAL``: a committed transaction survives the death of the process (the
crash guarantees of docs/exchange.md); after a power loss the last transactions may be lost, never
half of one. Every SQLite or file-system failure is a :class:`~vbdt.errors.LedgerError` naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vbdt.errors import LedgerError

__all__ = ["SqliteFile"]


class SqliteFile:
    """A SQLite connection behind a lock, with transactions and queries that fail as ``LedgerError``."""

    def __init__(self, path: str | Path, schema: str, *, what: str,
                 added_columns: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> None:
        """Open (or create) ``path`` with ``schema``; ``added_columns`` (table → (column, declaration))
        migrates a file written by an older version. ``what`` names the file in errors."""
        self.path = str(path)
        self.what = what
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
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: safe against process death
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open the {what} {self.path}: {exc}") from None
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), rolled back on any exception."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.what} {self.path}: {exc}") from None

    def query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of one read."""
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.what} {self.path}: {exc}") from None

    def close(self) -> None:
        """Release the file."""
        with self._lock:
            self._db.close()
