"""The request cache on a PostgreSQL server, shared by many runs on many hosts (psycopg 3).

The conninfo goes to libpq as written, so credentials come from the URI, the ``PG*``
environment variables or ``~/.pgpass``; the password is never logged, stored or shown: every
message names the server by its URI without the password. Writes are single short
transactions of ``INSERT ... ON CONFLICT``, keys sorted so concurrent writers lock rows in one
order. A connection lost mid-run is reopened with backoff a few times; then the run fails with
one line, and every batch committed before stays stored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_llmeval.clients.cache_store import (
    CacheServerError,
    CountRow,
    Entry,
    ResultRow,
    TokenCountMemo,
    decode_results,
    redact_uri,
    result_rows,
    uri_password,
)
from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.requests import RequestResult

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("pytest_llmeval.cache")
T = TypeVar("T")

RESULTS = "llmeval_results"
COUNTS = "llmeval_token_counts"
_SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS {RESULTS} (
        key TEXT PRIMARY KEY,
        deployment TEXT NOT NULL,
        request TEXT NOT NULL,
        result TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {COUNTS} (
        tokenizer TEXT NOT NULL,
        text_sha1 TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (tokenizer, text_sha1))""",
]
_INSERT_RESULTS = (f"INSERT INTO {RESULTS} (key, deployment, request, result, created) "
                   "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::float8[]) ORDER BY 1 "
                   "ON CONFLICT (key) DO {action}")
_UPDATE_RESULT = ("UPDATE SET deployment = EXCLUDED.deployment, request = EXCLUDED.request, "
                  "result = EXCLUDED.result, created = EXCLUDED.created")
_INSERT_COUNTS = (f"INSERT INTO {COUNTS} (tokenizer, text_sha1, count) "
                  "SELECT * FROM unnest(%s::text[], %s::text[], %s::int[]) ORDER BY 1, 2 "
                  "ON CONFLICT (tokenizer, text_sha1) DO {action}")
_PAGE = 1000  # keys per read, rows per write


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError("a postgresql:// request cache needs psycopg: pip install 'pytest-llmeval[postgres]'",
                          field="--llmeval-cache-uri") from None
    return psycopg


class PostgresCache:
    """Key -> stored :class:`RequestResult` JSON in tables ``llmeval_results`` and
    ``llmeval_token_counts`` of one PostgreSQL database; same keys and rows as the SQLite file."""

    # seconds to wait before each reconnect attempt once a connection is lost
    reconnect_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)

    def __init__(self, uri: str, *, connect_timeout: int = 10,
                 reconnect_delays: Sequence[float] | None = None) -> None:
        self._psycopg = _psycopg()
        self.uri = uri.strip()
        self.location = redact_uri(self.uri)
        self._password = uri_password(self.uri)
        self._connect_timeout = connect_timeout
        if reconnect_delays is not None:
            self.reconnect_delays = tuple(reconnect_delays)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        try:
            self._ensure_schema(self._connection())
        except self._psycopg.Error as exc:
            self._drop()
            raise ConfigError(f"request cache {self.location}: {self._reason(exc)}",
                              field="--llmeval-cache-uri") from None

    def _reason(self, exc: BaseException) -> str:
        """The error's first line, without the password even if a driver repeated it."""
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = lines[0] if lines else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text.replace(self.uri, self.location)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and (self._pid != os.getpid() or self._conn.closed):
            self._conn = None  # a forked child opens its own; a closed one is reopened
        if self._conn is None:
            self._conn = self._psycopg.connect(self.uri, autocommit=True, connect_timeout=self._connect_timeout,
                                               application_name="pytest-llmeval")
            self._pid = os.getpid()
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close; it is gone anyway
                conn.close()

    def _ensure_schema(self, conn: psycopg.Connection[Any]) -> None:
        """The tables, created once under an advisory lock so racing first runs do not collide."""
        present = conn.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                               (RESULTS, COUNTS)).fetchone()
        if present and present[0]:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('pytest-llmeval request cache schema'))")
            for statement in _SCHEMA:
                conn.execute(statement)

    def _run(self, what: str, action: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``action`` on the connection, reconnecting with backoff while the server is unreachable."""
        started = time.monotonic()
        with self._lock:
            for attempt in range(len(self.reconnect_delays) + 1):
                try:
                    return action(self._connection())
                except self._psycopg.OperationalError as exc:  # lost connection, shutdown, deadlock
                    self._drop()
                    if attempt == len(self.reconnect_delays):
                        raise CacheServerError(
                            f"request cache {self.location}: {what} failed and {attempt} reconnect attempts over "
                            f"{time.monotonic() - started:.0f}s did not help ({self._reason(exc)}); every batch "
                            f"stored before is kept") from None
                    delay = self.reconnect_delays[attempt]
                    log.warning("request cache %s: %s failed (%s); reconnecting in %.1fs", self.location, what,
                                self._reason(exc), delay)
                    time.sleep(delay)
                except self._psycopg.Error as exc:  # a permission or schema problem: retrying will not help
                    self._drop()
                    raise CacheServerError(f"request cache {self.location}: {what} failed ({self._reason(exc)})"
                                           ) from None
        raise AssertionError("unreachable")

    def _rows(self, what: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._run(what, lambda conn: conn.execute(sql, params).fetchall())

    def _write(self, what: str, sql: str, columns: Sequence[list[Any]]) -> int:
        """One short transaction; how many rows it inserted or updated."""
        def write(conn: psycopg.Connection[Any]) -> int:
            with conn.transaction():
                return max(conn.execute(sql, columns).rowcount, 0)

        return self._run(what, write)

    def get_many(self, keys: Sequence[str], redactor: Redactor | None = None) -> dict[str, RequestResult]:
        """Every stored result among ``keys``, read in bulk (each row's JSON text redacted first)."""
        rows: list[tuple[str, str]] = []
        for start in range(0, len(keys), _PAGE):
            rows += [(str(k), str(r)) for k, r in self._rows(
                "reading results", f"SELECT key, result FROM {RESULTS} WHERE key = ANY(%s)",
                [list(keys[start:start + _PAGE])])]
        return decode_results(rows, redactor)

    def put_many(self, entries: Iterable[Entry]) -> None:
        """Store one finished batch, committed at once (a key stored again is rewritten)."""
        rows = result_rows(entries, time.time())
        for start in range(0, len(rows), _PAGE):
            self._write("storing results", _INSERT_RESULTS.format(action=_UPDATE_RESULT),
                        _columns(rows[start:start + _PAGE], 5))

    def count(self) -> int:
        return int(self._rows("counting results", f"SELECT COUNT(*) FROM {RESULTS}", [])[0][0])

    def token_counts(self, tokenizer: str) -> TokenCountMemo:
        """Prompt token counts for one tokenizer, kept next to the results."""
        return TokenCountMemo(self, tokenizer)

    def get_token_counts(self, tokenizer: str, digests: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(digests), _PAGE):
            found.update({str(d): int(n) for d, n in self._rows(
                "reading token counts", f"SELECT text_sha1, count FROM {COUNTS} WHERE tokenizer = %s AND "
                "text_sha1 = ANY(%s)", [tokenizer, list(digests[start:start + _PAGE])])})
        return found

    def put_token_counts(self, rows: Sequence[CountRow]) -> None:
        unique = sorted({(t, d): (t, d, n) for t, d, n in rows}.values())
        for start in range(0, len(unique), _PAGE):
            self._write("storing token counts", _INSERT_COUNTS.format(action="UPDATE SET count = EXCLUDED.count"),
                        _columns(unique[start:start + _PAGE], 3))

    def result_pages(self, size: int = _PAGE) -> Iterator[list[ResultRow]]:
        """Every stored result row, ``size`` at a time in key order (for copying)."""
        after = ""
        while rows := self._rows("reading results", f"SELECT key, deployment, request, result, created FROM {RESULTS} "
                                 "WHERE key > %s ORDER BY key LIMIT %s", [after, size]):
            yield [(str(k), str(d), str(q), str(r), float(c)) for k, d, q, r, c in rows]
            after = str(rows[-1][0])

    def add_results(self, rows: Sequence[ResultRow]) -> int:
        """Rows whose key is not stored yet (a stored one is kept); how many were added."""
        unique = sorted({row[0]: row for row in rows}.values())
        return sum(self._write("copying results", _INSERT_RESULTS.format(action="NOTHING"),
                               _columns(unique[start:start + _PAGE], 5)) for start in range(0, len(unique), _PAGE))

    def count_pages(self, size: int = _PAGE) -> Iterator[list[CountRow]]:
        after = ("", "")
        while rows := self._rows("reading token counts", f"SELECT tokenizer, text_sha1, count FROM {COUNTS} WHERE "
                                 "(tokenizer, text_sha1) > (%s, %s) ORDER BY tokenizer, text_sha1 LIMIT %s",
                                 [*after, size]):
            yield [(str(t), str(d), int(n)) for t, d, n in rows]
            after = (str(rows[-1][0]), str(rows[-1][1]))

    def add_counts(self, rows: Sequence[CountRow]) -> int:
        unique = sorted({(t, d): (t, d, n) for t, d, n in rows}.values())
        return sum(self._write("copying token counts", _INSERT_COUNTS.format(action="NOTHING"),
                               _columns(unique[start:start + _PAGE], 3)) for start in range(0, len(unique), _PAGE))

    def close(self) -> None:
        with self._lock:
            self._drop()


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one array per column, for a single ``unnest`` insert."""
    return [[row[i] for row in rows] for i in range(width)]
