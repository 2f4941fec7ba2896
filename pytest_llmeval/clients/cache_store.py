"""What a request-cache store is: the protocol the SQLite file and the PostgreSQL server both
implement, the key they share, the token-count memo on top, and opening one from the settings.

Both stores hold the same two tables (results by key, token counts by tokenizer and text
SHA-1), so ``llmeval cache copy`` moves rows between them unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.requests import Request, RequestResult

# (key, deployment, request JSON, result JSON, created): one stored result, as copied between stores
ResultRow = tuple[str, str, str, str, float]
# (tokenizer, text SHA-1, count): one remembered prompt token count
CountRow = tuple[str, str, int]
# (key, deployment, request, result): what CachingClient stores per finished batch
Entry = tuple[str, str, Request, RequestResult]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class CacheServerError(LLMEvalError):
    """The cache server went away mid-run and reconnecting did not bring it back."""


def cache_key(deployment: str, identity: dict[str, Any], request: Request) -> str:
    payload = {"deployment": deployment, "identity": identity, "request": request.to_dict()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def result_rows(entries: Iterable[Entry], created: float) -> list[ResultRow]:
    """Entries as stored rows, one per key (the last entry of a key wins, as a rewrite would)."""
    rows = {key: (key, deployment, json.dumps(request.to_dict()), json.dumps(result.to_dict()), created)
            for key, deployment, request, result in entries}
    return [rows[key] for key in sorted(rows)]  # one lock order for every writer


def decode_results(rows: Iterable[tuple[str, str]], redactor: Redactor | None) -> dict[str, RequestResult]:
    """``(key, result JSON)`` rows as results, each JSON text redacted first."""
    if redactor:
        rows = [(key, redactor.text(text)) for key, text in rows]
    return {key: RequestResult.from_dict(json.loads(text)) for key, text in rows}


class CacheStore(Protocol):
    """Where cached results and token counts live; safe for many processes writing at once."""

    location: str  # for messages: a file path, or the server URI without its password

    def get_many(self, keys: Sequence[str], redactor: Redactor | None = None) -> dict[str, RequestResult]: ...

    def put_many(self, entries: Iterable[Entry]) -> None: ...

    def count(self) -> int: ...

    def token_counts(self, tokenizer: str) -> TokenCountMemo: ...

    def get_token_counts(self, tokenizer: str, digests: Sequence[str]) -> dict[str, int]: ...

    def put_token_counts(self, rows: Sequence[CountRow]) -> None: ...

    def result_pages(self, size: int = 1000) -> Iterator[list[ResultRow]]: ...

    def add_results(self, rows: Sequence[ResultRow]) -> int: ...

    def count_pages(self, size: int = 1000) -> Iterator[list[CountRow]]: ...

    def add_counts(self, rows: Sequence[CountRow]) -> int: ...

    def close(self) -> None: ...


class TokenCountMemo:
    """How many tokens a prompt has under one tokenizer (keyed by the tokenizer's content and
    the text's SHA-1), so a rerun fits and counts its prompts without encoding them again."""

    def __init__(self, cache: CacheStore, tokenizer: str) -> None:
        self.cache = cache
        self.tokenizer = tokenizer

    def get_counts(self, texts: Sequence[str]) -> dict[str, int]:
        by_hash = {hashlib.sha1(text.encode()).hexdigest(): text for text in texts}
        found = self.cache.get_token_counts(self.tokenizer, list(by_hash))
        return {by_hash[digest]: count for digest, count in found.items()}

    def put_counts(self, counts: Sequence[tuple[str, int]]) -> None:
        rows = {hashlib.sha1(text.encode()).hexdigest(): int(count) for text, count in counts}
        if rows:
            self.cache.put_token_counts([(self.tokenizer, digest, rows[digest]) for digest in sorted(rows)])


def is_postgres_uri(text: str) -> bool:
    return text.strip().lower().startswith(POSTGRES_SCHEMES)


def redact_uri(uri: str) -> str:
    """The URI without its password (in the user part or a ``password=`` parameter)."""
    try:
        parts = urllib.parse.urlsplit(uri.strip())
        netloc = parts.netloc
        if "@" in netloc:
            user, _, hosts = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}@{hosts}"
        query = urllib.parse.urlencode([(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                                        if k.lower() != "password"])
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:  # not even a URL: drop anything that looks like a password
        text = re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", uri)
        return re.sub(r"(?i)password=[^&\s]*", "password=***", text)


def uri_password(uri: str) -> str | None:
    """The password written in the URI, if any, so messages can be scrubbed of it."""
    try:
        parts = urllib.parse.urlsplit(uri.strip())
        found = parts.password or dict(urllib.parse.parse_qsl(parts.query)).get("password")
    except ValueError:
        return None
    return found or None


def open_store(uri: str | None, path: Path) -> CacheStore:
    """The PostgreSQL store at ``uri`` when one is given, else the SQLite file at ``path``."""
    if uri:
        from pytest_llmeval.clients.cache_postgres import PostgresCache

        return PostgresCache(uri)
    from pytest_llmeval.clients.cache_sqlite import RequestCache

    return RequestCache(path)


def open_location(location: str) -> CacheStore:
    """A store named as ``llmeval cache copy`` takes it: a ``postgresql://`` URI or a file path."""
    return open_store(location, Path()) if is_postgres_uri(location) else open_store(None, Path(location))
