"""The request cache on a real PostgreSQL server (tests/pg_server.py): the same keys and rows as
the SQLite file, shared by concurrent sessions, surviving a lost server, copied both ways."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.adapters import ContextWindow
from pytest_llmeval.cache_copy import main as copy_main
from pytest_llmeval.clients.cache import CacheServerError, CachingClient, RequestCache, cache_key
from pytest_llmeval.clients.cache_postgres import PostgresCache
from pytest_llmeval.clients.cache_store import redact_uri
from pytest_llmeval.errors import ConfigError
from tests.pg_server import PASSWORD, USER, PostgresServer, start_server
from tests.projects import scripted_project
from tests.test_cache import DEPLOYMENT, IDENTITY, Scripted, _request, _result
from tests.test_plugin_e2e import DEPLOYMENTS, SCRIPTED_MODEL
from tests.test_token_count_memo import CountingTokenizer

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
TWO_SUBJECTS = "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n"


def _entries(n: int) -> list[tuple[str, str, Any, Any]]:
    return [(cache_key(DEPLOYMENT, IDENTITY, _request(i)), DEPLOYMENT, _request(i), _result(f"a{i}")) for i in range(n)]


# --- the store ---------------------------------------------------------------------------------------


def test_results_and_token_counts_round_trip_under_the_sqlite_keys(pg_uri: str, tmp_path: Path) -> None:
    store = PostgresCache(pg_uri)
    sqlite = RequestCache(tmp_path / "requests.sqlite")
    for cache in (store, sqlite):
        caching = CachingClient(DEPLOYMENT, Scripted, IDENTITY, cache)
        assert [r.completions[0].text for r in caching.generate([_request(i) for i in range(3)])] == [
            "answer:prompt 0", "answer:prompt 1", "answer:prompt 2"]
        again = CachingClient(DEPLOYMENT, lambda: pytest.fail("built on a cached run"), IDENTITY, cache)
        results = again.generate([_request(i) for i in range(3)])
        assert all(r.cached for r in results) and (again.hits, again.misses) == (3, 0)
    keys = [cache_key(DEPLOYMENT, IDENTITY, _request(i)) for i in range(3)]
    assert sorted(store.get_many(keys)) == sorted(sqlite.get_many(keys)) == sorted(keys)
    store.put_many(_entries(3))  # a key stored again is rewritten, never duplicated
    assert store.count() == 3

    first = CountingTokenizer()
    window = ContextWindow(first, 100, store.token_counts("tok-a"))
    window.prime(["one", "three", "one"])
    rerun = CountingTokenizer()
    again_window = ContextWindow(rerun, 100, PostgresCache(pg_uri).token_counts("tok-a"))
    again_window.prime(["one", "three"])
    assert [again_window.count(t) for t in ("one", "three")] == [3, 5] and rerun.encoded == []
    other = CountingTokenizer()
    ContextWindow(other, 100, store.token_counts("tok-b")).prime(["one"])
    assert other.encoded == ["one"]


def test_concurrent_writers_of_the_same_keys_lose_nothing_and_duplicate_nothing(pg_uri: str) -> None:
    entries = _entries(300)
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        store = PostgresCache(pg_uri)
        try:  # overlapping batches in different orders: the sorted insert keeps them from deadlocking
            for start in range(offset, offset + 300, 25):
                store.put_many([entries[i % 300] for i in range(start, start + 25)][::-1])
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(offset,)) for offset in (0, 50, 150, 275)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = PostgresCache(pg_uri)
    assert store.count() == 300
    assert len(store.get_many([e[0] for e in entries])) == 300


def test_a_restarted_server_is_reconnected_to(pg_server: PostgresServer, pg_uri: str) -> None:
    store = PostgresCache(pg_uri, reconnect_delays=(0.5, 1.0, 2.0, 4.0))
    entries = _entries(4)
    store.put_many(entries[:2])
    pg_server.stop("immediate")
    restart = threading.Timer(1.0, pg_server.start)
    restart.start()
    try:
        store.put_many(entries[2:])  # fails, waits, reconnects once the server is back
    finally:
        restart.join()
    assert store.count() == 4


def test_a_server_that_stays_down_is_one_line_without_the_password(pg_server: PostgresServer, pg_uri: str) -> None:
    store = PostgresCache(pg_uri, reconnect_delays=(0.1, 0.2, 0.4))
    store.put_many(_entries(2))
    pg_server.stop("immediate")
    started = time.monotonic()
    try:
        with pytest.raises(CacheServerError) as caught:
            store.put_many(_entries(4)[2:])
    finally:
        pg_server.start()
    message = str(caught.value)
    assert time.monotonic() - started >= 0.7  # it waited through every backoff
    assert message.startswith(f"request cache {redact_uri(pg_uri)}: storing results failed and 3 reconnect")
    assert PASSWORD not in message and "\n" not in message and "stored before is kept" in message
    assert PostgresCache(pg_uri).count() == 2


def test_credentials_come_from_pg_variables_and_pgpass(pg_server: PostgresServer, pg_uri: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    bare = pg_uri.replace(f":{PASSWORD}@", "@")
    assert PASSWORD not in bare
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="password"):
        PostgresCache(bare)
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    PostgresCache(bare).put_many(_entries(1))
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{pg_server.port}:*:{USER}:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert PostgresCache(bare).count() == 1


@pytest.mark.parametrize("problem", ["wrong password", "unreachable", "bad uri", "no database"])
def test_bad_server_settings_are_one_line_naming_the_server(pg_server: PostgresServer, problem: str) -> None:
    from tests.servers import free_port

    uri = {"wrong password": pg_server.uri(password="Wr0ng-" + PASSWORD),
           "unreachable": f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/postgres",
           "bad uri": f"postgresql://{USER}:{PASSWORD}@127.0.0.1:notaport/postgres",
           "no database": pg_server.uri("nosuchdb")}[problem]
    with pytest.raises(ConfigError) as caught:
        PostgresCache(uri, connect_timeout=5)
    message = str(caught.value)
    assert redact_uri(uri) in message and "\n" not in message
    assert PASSWORD not in message and "postgresql://llmeval@127.0.0.1:" in message


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError, match=r"pip install 'pytest-llmeval\[postgres\]'"):
        PostgresCache("postgresql://someone@db.example/cache")


def test_redacted_uris_keep_everything_but_the_password() -> None:
    assert redact_uri("postgresql://u:p%40ss@h:5/db?sslmode=require&password=x") == (
        "postgresql://u@h:5/db?sslmode=require")
    assert redact_uri("postgres://h/db") == "postgres://h/db"


# --- through pytest ----------------------------------------------------------------------------------


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    scripted_project(pytester, monkeypatch, SCRIPTED_MODEL, DEPLOYMENTS)
    monkeypatch.setenv("SCRIPTED_LOG_DIR", str(pytester.path))
    (pytester.path / "other_env").mkdir()
    (pytester.path / "other_env" / "model_deployments.yaml").write_text(DEPLOYMENTS)
    return pytester


def _summary(root: Path, output: str) -> dict[str, Any]:
    return dict(json.loads((root / output / "runs" / "default" / "llmeval_summary.json").read_text()))


def _no_password_under(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("xdist", XDIST)
def test_a_rerun_elsewhere_is_served_from_the_server(project: pytest.Pytester, pg_uri: str, xdist: list[str]) -> None:
    (project.path / "eval_mmlu.yaml").write_text(TWO_SUBJECTS)
    args = ["--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "15", "--llmeval-cache-uri",
            pg_uri, *xdist]
    project.runpytest(*args).assert_outcomes(passed=2)
    first = _summary(project.path, "benchmark_output")
    requests = sum(r["requests"] for r in first["runs"])
    assert requests == 30 and PostgresCache(pg_uri).count() == requests
    assert not (project.path / "prod_env" / "cache").exists()  # nothing went to the SQLite file
    built = (project.path / "constructions.log").read_text().count("built")

    rerun = project.runpytest(*args, "--llmeval-output-path", "elsewhere", "--llmeval-local-path", "other_env")
    rerun.assert_outcomes(passed=2)
    second = _summary(project.path, "elsewhere")
    assert [r["cache_hits"] for r in second["runs"]] == [r["requests"] for r in second["runs"]] == [15, 15]
    assert (project.path / "constructions.log").read_text().count("built") == built  # no model built
    assert PASSWORD not in rerun.stdout.str() + rerun.stderr.str()
    _no_password_under(project.path)


def test_two_concurrent_xdist_sessions_lose_and_duplicate_nothing(project: pytest.Pytester, pg_uri: str) -> None:
    (project.path / "a").mkdir()
    (project.path / "b").mkdir()
    (project.path / "a" / "eval_a.yaml").write_text(TWO_SUBJECTS)
    (project.path / "b" / "eval_b.yaml").write_text("entries: [mmlu:subject=astronomy, mmlu:subject=college_biology]\n")
    common = ["--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "12", "--llmeval-cache-uri",
              pg_uri, "--llmeval-local-path", str(project.path / "prod_env"), "-n", "2", "-p", "no:cacheprovider"]
    sessions = [subprocess.Popen([sys.executable, "-m", "pytest", *common, "--llmeval-output-path", f"out_{name}",
                                  name], cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, env=os.environ.copy()) for name in ("a", "b")]
    outputs = [session.communicate(timeout=300)[0] for session in sessions]
    for session, output in zip(sessions, outputs):
        assert session.returncode == 0, output[-3000:]
    runs = {r["run"]: r["requests"] for name in "ab" for r in _summary(project.path, f"out_{name}")["runs"]}
    assert len(runs) == 3 and set(runs.values()) == {12}  # astronomy ran in both sessions
    assert PostgresCache(pg_uri).count() == sum(runs.values()) == 36
    rerun = project.runpytest(*common[:-2], "--llmeval-output-path", "out_c", "a", "b")
    rerun.assert_outcomes(passed=4)
    assert all(r["cache_hits"] == r["requests"] for r in _summary(project.path, "out_c")["runs"])


STOPPING_MODEL = '''
"""Answers a letter; on its third batch stops the PostgreSQL server (as a crash would) first."""
import json
import os
import subprocess


class StoppingModel:
    batch_hint = 4
    calls = 0

    def generate(self, requests):
        StoppingModel.calls += 1
        if StoppingModel.calls == 3:
            subprocess.run(json.loads(os.environ["PG_STOP"]), check=True, capture_output=True)
        return [" " + "ABCD"[len(r.prompt) % 4] for r in requests]
'''

STOPPING_DEPLOYMENTS = ("model_deployments:\n  - {name: scripted/stopping, model_name: scripted/stopping, "
                        "client_spec: {class_name: 'scripted_model:StoppingModel'}}\n")


@pytest.mark.parametrize("xdist", XDIST)
def test_a_server_killed_mid_run_fails_in_one_line_and_keeps_finished_batches(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]) -> None:
    server = start_server()  # its own server: this test kills it
    try:
        uri = server.create_database()
        scripted_project(pytester, monkeypatch, STOPPING_MODEL, STOPPING_DEPLOYMENTS)
        monkeypatch.setenv("PG_STOP", json.dumps(server.stop_command("immediate")))
        (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
        started = time.monotonic()
        result = pytester.runpytest("--llmeval-models", "scripted/stopping", "--llmeval-max-eval-instances", "15",
                                    "--llmeval-cache-uri", uri, *xdist)
        seconds = time.monotonic() - started
        result.assert_outcomes(failed=1)
        text = result.stdout.str() + result.stderr.str()
        assert PASSWORD not in text and "Traceback" not in text
        result.stdout.fnmatch_lines([f"*request cache {redact_uri(uri)}: storing results failed and 4 reconnect "
                                     f"attempts over *s did not help (*); every batch stored before is kept*"])
        assert seconds >= 7  # waited through the backoff (0.5 + 1 + 2 + 4 s)
        server.start()
        assert PostgresCache(uri).count() == 8  # the two batches finished before the server went away
    finally:
        server.remove()


def test_a_non_postgres_uri_and_an_unreachable_server_stop_the_session(project: pytest.Pytester) -> None:
    from tests.servers import free_port

    (project.path / "eval_mmlu.yaml").write_text(TWO_SUBJECTS)
    wrong = project.runpytest("--llmeval-cache-uri", f"mysql://me:{PASSWORD}@127.0.0.1/db")
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR
    assert "field --llmeval-cache-uri: 'mysql://me@127.0.0.1/db' is not a PostgreSQL URI" in wrong.stderr.str()
    port = free_port()
    down = project.runpytest("--llmeval-models", "scripted/letters", "-n", "2",
                             "--llmeval-cache-uri", f"postgresql://me:{PASSWORD}@127.0.0.1:{port}/db")
    assert down.ret == pytest.ExitCode.USAGE_ERROR
    down.stderr.fnmatch_lines([f"*field --llmeval-cache-uri: request cache postgresql://me@127.0.0.1:{port}/db: *"])
    assert PASSWORD not in wrong.stderr.str() + down.stderr.str() + down.stdout.str()
    assert "Traceback" not in down.stderr.str()


def test_the_ini_key_names_the_server_too(project: pytest.Pytester, pg_uri: str) -> None:
    (project.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    project.makeini(f"[pytest]\nllmeval_cache_uri = {pg_uri}\n")
    project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "5").assert_outcomes(
        passed=1)
    assert PostgresCache(pg_uri).count() == 5


# --- llmeval cache copy ------------------------------------------------------------------------------


def test_copy_sqlite_to_postgres_and_back(pg_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    laptop = RequestCache(tmp_path / "laptop.sqlite")
    laptop.put_many(_entries(5))
    laptop.token_counts("tok").put_counts([("one", 3), ("three", 5)])
    cluster = PostgresCache(pg_uri)
    cluster.put_many(_entries(7)[3:])  # two keys the laptop has too, two of its own

    assert copy_main(["copy", str(tmp_path / "laptop.sqlite"), pg_uri]) == 0
    line = capsys.readouterr().out.strip()
    assert line == (f"copied 3 results (2 already in DEST, skipped) and 2 token counts (0 skipped) from "
                    f"{tmp_path / 'laptop.sqlite'} to {redact_uri(pg_uri)}")
    assert cluster.count() == 7
    assert cluster.token_counts("tok").get_counts(["one", "three"]) == {"one": 3, "three": 5}

    back = tmp_path / "back.sqlite"
    done = subprocess.run([sys.executable, "-m", "pytest_llmeval.cli", "cache", "copy", pg_uri, str(back)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "copied 7 results (0 already in DEST, skipped) and 2 token counts (0 skipped)" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    copied = RequestCache(back)
    keys = [e[0] for e in _entries(7)]
    assert {k: r.to_dict() for k, r in copied.get_many(keys).items()} == {
        k: r.to_dict() for k, r in cluster.get_many(keys).items()}
    for again in (["copy", str(back), pg_uri], ["copy", pg_uri, str(back)]):  # everything is already there
        assert copy_main(again) == 0
        assert "copied 0 results (7 already in DEST, skipped) and 0 token counts (2 skipped)" in (
            capsys.readouterr().out)
    assert cluster.count() == 7


def test_copy_failures_are_one_line(pg_server: PostgresServer, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert copy_main(["copy", str(tmp_path / "missing.sqlite"), pg_server.uri()]) == 1
    missing = tmp_path / "missing.sqlite"
    assert capsys.readouterr().err.strip() == f"llmeval cache copy: SOURCE {missing}: no such cache file"
    RequestCache(tmp_path / "there.sqlite")
    assert copy_main(["copy", str(tmp_path / "there.sqlite"), pg_server.uri(password="nope")]) == 1
    err = capsys.readouterr().err.strip()
    server = pg_server.uri(password=None)
    assert err.startswith(f"llmeval cache copy: DEST: field --llmeval-cache-uri: request cache {server}: ")
    assert "\n" not in err and "nope" not in err


# --- the bundled model -------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_bundled_model_caches_on_the_server(pytester: pytest.Pytester, pg_uri: str) -> None:
    (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    args = ["--llmeval-max-eval-instances", "3", "--llmeval-cache-uri", pg_uri]
    pytester.runpytest(*args).assert_outcomes(passed=1)
    assert PostgresCache(pg_uri).count() == 3
    import psycopg

    with psycopg.connect(pg_uri) as conn:  # the prompts' token counts are remembered on the server too
        row = conn.execute("SELECT COUNT(*) FROM llmeval_token_counts").fetchone()
    assert row is not None and row[0] >= 3
    rerun = pytester.runpytest(*args, "--llmeval-local-path", "elsewhere_env", "--llmeval-output-path", "again")
    rerun.assert_outcomes(passed=1)
    assert [r["cache_hits"] for r in _summary(pytester.path, "again")["runs"]] == [3]
