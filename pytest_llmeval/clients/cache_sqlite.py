"""The request cache in one SQLite file (the default), safe for many pytest-xdist workers at once.

WAL mode plus a busy timeout and retries keeps concurrent writers from failing with "database
is locked". A file that is not an SQLite database is a :class:`CacheFileError` naming it and
how to move it aside, never a crash.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.clients.cache_store import (
    CountRow,
    Entry,
    ResultRow,
    TokenCountMemo,
    decode_results,
    result_rows,
)
from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.requests import RequestResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    deployment TEXT NOT NULL,
    request TEXT NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL
)
"""


_COUNTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS token_counts (
    tokenizer TEXT NOT NULL,
    text_sha1 TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (tokenizer, text_sha1)
)
"""


class CacheFileError(ConfigError):
    """The cache file exists but cannot be used as an SQLite database."""

    def __init__(self, path: Path, reason: object) -> None:
        super().__init__(f"is not a readable SQLite database ({reason}); move it aside "
                         f"(mv {path} {path}.bad) or run with --llmeval-disable-cache", file=path)


class RequestCache:
    """Key -> stored :class:`RequestResult` JSON, one SQLite file shared by processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._retry(lambda c: c.execute(_SCHEMA))
        self._retry(lambda c: c.execute(_COUNTS_SCHEMA))
        self._retry(lambda c: c.execute("SELECT key, result FROM results LIMIT 1").fetchall())

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 60000")
            self._retry_once(conn, "PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    @staticmethod
    def _retry_once(conn: sqlite3.Connection, sql: str) -> None:
        for attempt in range(50):
            try:
                conn.execute(sql)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _retry(self, action: Any) -> Any:
        for attempt in range(50):
            try:
                return action(self._connection())
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or attempt == 49:
                    if _unreadable(exc):
                        raise CacheFileError(self.path, exc) from None
                    raise
                time.sleep(0.05 * (attempt + 1))
            except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
                raise CacheFileError(self.path, exc) from None
        return None

    def select_in(self, sql: str, keys: Sequence[str], *leading: Any) -> list[Any]:
        """Rows of ``sql`` (whose ``{marks}`` is an ``IN`` list) for many keys, 500 per query
        (SQLite's parameter limit); ``leading`` parameters come before the keys."""
        rows: list[Any] = []
        for start in range(0, len(keys), 500):
            chunk = [*leading, *keys[start:start + 500]]
            query = sql.format(marks=",".join("?" * (len(chunk) - len(leading))))
            rows += self._retry(lambda c, query=query, chunk=chunk: c.execute(query, chunk).fetchall())
        return rows

    def get_many(self, keys: Sequence[str], redactor: Redactor | None = None) -> dict[str, RequestResult]:
        """Every stored result among ``keys``, read in bulk (each row's JSON text redacted first)."""
        return decode_results(self.select_in("SELECT key, result FROM results WHERE key IN ({marks})", keys),
                              redactor)

    def put_many(self, entries: Iterable[Entry]) -> None:
        """Store ``(key, deployment, request, result)`` rows in one short transaction."""
        rows = result_rows(entries, time.time())
        if rows:
            self._write("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)", rows)

    def _write(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """Many rows in one short immediate transaction; how many rows it changed."""
        def write(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                changed = conn.executemany(sql, rows).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(changed)

        return int(self._retry(write))

    def token_counts(self, tokenizer: str) -> TokenCountMemo:
        """Prompt token counts for one tokenizer, kept next to the results."""
        return TokenCountMemo(self, tokenizer)

    def get_token_counts(self, tokenizer: str, digests: Sequence[str]) -> dict[str, int]:
        rows = self.select_in("SELECT text_sha1, count FROM token_counts WHERE tokenizer = ? AND "
                              "text_sha1 IN ({marks})", digests, tokenizer)
        return {digest: int(count) for digest, count in rows}

    def put_token_counts(self, rows: Sequence[CountRow]) -> None:
        if rows:
            self._write("INSERT OR REPLACE INTO token_counts VALUES (?, ?, ?)", rows)

    def count(self) -> int:
        return int(self._retry(lambda c: c.execute("SELECT COUNT(*) FROM results").fetchone()[0]))

    def result_pages(self, size: int = 1000) -> Iterator[list[ResultRow]]:
        """Every stored result row, ``size`` at a time in key order (for copying)."""
        after = ""
        while rows := self._retry(lambda c, after=after: c.execute(
                "SELECT key, deployment, request, result, created FROM results WHERE key > ? ORDER BY key "
                "LIMIT ?", (after, size)).fetchall()):
            yield [tuple(row) for row in rows]
            after = rows[-1][0]

    def add_results(self, rows: Sequence[ResultRow]) -> int:
        """Rows whose key is not stored yet (a stored one is kept); how many were added."""
        return self._write("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?)", rows) if rows else 0

    def count_pages(self, size: int = 1000) -> Iterator[list[CountRow]]:
        after = ("", "")
        while rows := self._retry(lambda c, after=after: c.execute(
                "SELECT tokenizer, text_sha1, count FROM token_counts WHERE (tokenizer, text_sha1) > (?, ?) "
                "ORDER BY tokenizer, text_sha1 LIMIT ?", (*after, size)).fetchall()):
            yield [(str(t), str(d), int(n)) for t, d, n in rows]
            after = (rows[-1][0], rows[-1][1])

    def add_counts(self, rows: Sequence[CountRow]) -> int:
        return self._write("INSERT OR IGNORE INTO token_counts VALUES (?, ?, ?)", rows) if rows else 0

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _unreadable(error: sqlite3.OperationalError) -> bool:
    """An error that says the file itself is unusable (not a lock held by another process)."""
    text = str(error)
    return "unable to open database" in text or "not a database" in text
