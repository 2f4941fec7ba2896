"""A persistent request cache in SQLite, safe for many pytest-xdist workers at once.

Keys hash the deployment, the client's identity (weights, revision, dtype, endpoint) and the
whole request. Each batch's results are written as soon as they arrive, so an interrupted
run keeps everything it finished. WAL mode plus a busy timeout and retries keeps concurrent
writers from failing with "database is locked". A file that is not an SQLite database is a
:class:`CacheFileError` naming it and how to move it aside, never a crash.

Known secrets are redacted from each result as it comes back, before it is stored or
returned, and from stored results as they are read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.clients.protocol import Capabilities, Client, ClientBase, Finished, client_identity, collect, stream
from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.requests import Request, RequestResult

log = logging.getLogger("pytest_llmeval.cache")

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


def cache_key(deployment: str, identity: dict[str, Any], request: Request) -> str:
    payload = {"deployment": deployment, "identity": identity, "request": request.to_dict()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class RequestCache:
    """Key -> stored :class:`RequestResult` JSON, one SQLite file shared by processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
        rows = self.select_in("SELECT key, result FROM results WHERE key IN ({marks})", keys)
        if redactor:
            rows = [(key, redactor.text(text)) for key, text in rows]
        return {key: RequestResult.from_dict(json.loads(text)) for key, text in rows}

    def put_many(self, entries: Iterable[tuple[str, str, Request, RequestResult]]) -> None:
        """Store ``(key, deployment, request, result)`` rows in one short transaction."""
        now = time.time()
        rows = [
            (key, deployment, json.dumps(request.to_dict()), json.dumps(result.to_dict()), now)
            for key, deployment, request, result in entries
        ]
        if rows:
            self._write("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)", rows)

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Many rows in one short immediate transaction."""
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        self._retry(write)

    def token_counts(self, tokenizer: str) -> TokenCountMemo:
        """Prompt token counts for one tokenizer, kept next to the results."""
        return TokenCountMemo(self, tokenizer)

    def count(self) -> int:
        return int(self._retry(lambda c: c.execute("SELECT COUNT(*) FROM results").fetchone()[0]))


class TokenCountMemo:
    """How many tokens a prompt has under one tokenizer (keyed by the tokenizer's content and
    the text's SHA-1), so a rerun fits and counts its prompts without encoding them again."""

    def __init__(self, cache: RequestCache, tokenizer: str) -> None:
        self.cache = cache
        self.tokenizer = tokenizer

    def get_counts(self, texts: Sequence[str]) -> dict[str, int]:
        by_hash = {hashlib.sha1(text.encode()).hexdigest(): text for text in texts}
        rows = self.cache.select_in("SELECT text_sha1, count FROM token_counts WHERE tokenizer = ? AND "
                                    "text_sha1 IN ({marks})", list(by_hash), self.tokenizer)
        return {by_hash[digest]: int(count) for digest, count in rows}

    def put_counts(self, counts: Sequence[tuple[str, int]]) -> None:
        rows = [(self.tokenizer, hashlib.sha1(text.encode()).hexdigest(), count) for text, count in counts]
        if rows:
            self.cache._write("INSERT OR REPLACE INTO token_counts VALUES (?, ?, ?)", rows)


class CachingClient(ClientBase):
    """Wraps a client: answers from the cache first, asks the model only for the rest.

    The wrapped client is built lazily, so a run whose requests are all cached never loads
    the model; its identity and capabilities, when given, are known without building it.
    ``redactor`` removes known secrets from every result before it is stored or returned,
    whatever the backend.
    """

    def __init__(self, deployment: str, make_client: Any, identity: dict[str, Any] | None,
                 cache: RequestCache | None, redactor: Redactor | None = None,
                 capabilities: Capabilities | None = None) -> None:
        self.deployment = deployment
        self.redactor = redactor or Redactor()
        self._make_client = make_client
        self._client: Client | None = None
        self._identity = identity
        self._capabilities = capabilities
        self.cache = cache
        self.hits = 0
        self.misses = 0

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = client_identity(self.client)
        return self._identity

    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = self.client.capabilities()
        return self._capabilities

    def prompt_tokenizer(self, counting: bool = False) -> Any | None:
        """The wrapped client's tokenizer; None, without building it, when it has none."""
        return self.client.prompt_tokenizer(counting) if self.capabilities().local_tokenizer else None

    def count_prompt_tokens(self, request: Request) -> int | None:
        return self.client.count_prompt_tokens(request) if self.capabilities().local_tokenizer else None

    def model_loads(self) -> int:
        """Loads of the wrapped client's weights; 0 while it is not built (a cached run)."""
        return self._client.model_loads() if self._client is not None else 0

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        return collect(self.generate_stream(requests), len(requests))

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[Finished]:
        """Cached results first (read in bulk), then the model's, each batch stored as it finishes."""
        keys: list[str] = []
        missing = list(range(len(requests)))
        if self.cache is not None:
            keys = [cache_key(self.deployment, self.identity(), r) for r in requests]
            stored = self.cache.get_many(keys, self.redactor)
            hits = [i for i, key in enumerate(keys) if key in stored]
            for i in hits:
                stored[keys[i]].cached = True
            missing = [i for i, key in enumerate(keys) if key not in stored]
            if requests:
                log.info("%s: %d of %d requests served from the cache", self.deployment, len(hits), len(requests))
            if hits:
                yield hits, [stored[keys[i]] for i in hits]
        self.hits += len(requests) - len(missing)
        self.misses += len(missing)
        if not missing:
            return
        for positions, answers in stream(self.client, [requests[i] for i in missing]):
            if len(answers) != len(positions):
                raise RuntimeError(
                    f"{self.deployment}: client returned {len(answers)} results for {len(positions)} requests")
            indices = [missing[p] for p in positions]
            answers = [self.redactor.result(answer) for answer in answers]
            for answer in answers:
                answer.cached = False
            if self.cache is not None:
                self.cache.put_many((keys[i], self.deployment, requests[i], answer)
                                    for i, answer in zip(indices, answers) if answer.success)
            yield indices, answers


def _unreadable(error: sqlite3.OperationalError) -> bool:
    """An error that says the file itself is unusable (not a lock held by another process)."""
    text = str(error)
    return "unable to open database" in text or "not a database" in text
