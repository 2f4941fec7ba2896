"""``llmeval cache copy SOURCE DEST``: copy a request cache between SQLite files and PostgreSQL.

SOURCE and DEST are each an SQLite file or a ``postgresql://`` URI, so a laptop's cache can
seed a cluster's and back. Results and token counts are copied page by page, each page
committed as it goes; rows DEST already has are kept, so copying twice adds nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeval.clients.cache_store import CacheStore, is_postgres_uri, open_location, redact_uri
from pytest_llmeval.errors import LLMEvalError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmeval cache", description="work on request caches")
    commands = parser.add_subparsers(dest="command", required=True)
    copy = commands.add_parser("copy", help="copy results and token counts from SOURCE into DEST",
                               description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    copy.add_argument("source", metavar="SOURCE", help="an SQLite cache file or a postgresql:// URI")
    copy.add_argument("dest", metavar="DEST", help="an SQLite cache file (created if missing) or a postgresql:// URI")
    return parser


@dataclass
class Copied:
    """What a copy has done so far (each page is committed, so a failed copy keeps this much)."""

    results: int = 0
    results_skipped: int = 0
    counts: int = 0
    counts_skipped: int = 0

    def line(self) -> str:
        return (f"copied {self.results} results ({self.results_skipped} already in DEST, skipped) and "
                f"{self.counts} token counts ({self.counts_skipped} skipped)")


def copy(source: CacheStore, dest: CacheStore, done: Copied | None = None) -> Copied:
    """Every result and token count of ``source`` that ``dest`` lacks, a page at a time."""
    done = done if done is not None else Copied()
    for rows in source.result_pages():
        added = dest.add_results(rows)
        done.results, done.results_skipped = done.results + added, done.results_skipped + len(rows) - added
    for count_rows in source.count_pages():
        added = dest.add_counts(count_rows)
        done.counts, done.counts_skipped = done.counts + added, done.counts_skipped + len(count_rows) - added
    return done


def _open(location: str, role: str, *, must_exist: bool) -> CacheStore:
    if must_exist and not is_postgres_uri(location) and not Path(location).is_file():
        raise LLMEvalError(f"{role} {location}: no such cache file")
    try:
        return open_location(location)
    except LLMEvalError as exc:
        raise LLMEvalError(f"{role}: {exc}") from None


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    source_name, dest_name = redact_uri(args.source), redact_uri(args.dest)
    stores: list[CacheStore] = []
    done = Copied()
    try:
        stores.append(_open(args.source, "SOURCE", must_exist=True))
        stores.append(_open(args.dest, "DEST", must_exist=False))
        copy(stores[0], stores[1], done)
    except LLMEvalError as exc:
        kept = f" ({done.line()} before that; copying again continues)" if done.results or done.counts else ""
        print(f"llmeval cache copy: {exc}{kept}", file=sys.stderr)
        return 1
    finally:
        for store in stores:
            store.close()
    print(f"{done.line()} from {source_name} to {dest_name}")
    return 0
