"""Secrets and the request cache, end to end through pytest (pytester).

A real loopback server echoes the request's ``Authorization`` header into its answers and
error messages; the API key must appear in none of the files the run writes, the cache
database, the report, the log file or the terminal. A cache file that is not SQLite stops the
session with one line naming the file and how to move it aside.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_llmeval.clients.redaction import MARKER
from tests.servers import EchoingOpenAIServer

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
KEY = "sk-live-0123456789abcdefSECRET"


def _deployments(base_url: str, extra: str = "") -> str:
    return textwrap.dedent(f"""
        model_deployments:
          - name: echo/chat
            model_name: echo/chat
            client_spec:
              class_name: pytest_llmeval.clients.OpenAICompatibleClient
              args: {{base_url: "{base_url}", model: echo, api: chat, max_retries: 2, backoff: 0.01{extra}}}
    """)


def _everything_written(root: Path) -> dict[str, bytes]:
    """Every file under the project after the run but the inputs that hold the key on purpose."""
    inputs = {root / "prod_env" / "credentials.conf"}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p not in inputs and "__pycache__" not in p.parts}


@pytest.mark.parametrize("source", ["credentials.conf", "api_key_env"])
def test_an_echoed_api_key_is_written_nowhere(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                              source: str) -> None:
    """The key (from credentials.conf, or an environment variable the deployment names) is sent,
    echoed back in completions and a 503's message, and redacted from every output."""
    with EchoingOpenAIServer(overloaded=1) as server:
        (pytester.path / "prod_env").mkdir()
        if source == "credentials.conf":
            (pytester.path / "prod_env" / "credentials.conf").write_text(f'echoApiKey: "{KEY}"\n')
            deployments = _deployments(server.base_url)
        else:
            monkeypatch.setenv("MY_ECHO_KEY", KEY)
            deployments = _deployments(server.base_url, ", api_key_env: MY_ECHO_KEY")
        (pytester.path / "prod_env" / "model_deployments.yaml").write_text(deployments)
        (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
        result = pytester.runpytest("--llmeval-models", "echo/chat", "--llmeval-max-eval-instances", "3",
                                    "-rA", "--log-file", "run.log", "--log-file-level", "DEBUG",
                                    "--log-level", "DEBUG")

    result.assert_outcomes(passed=1)
    assert server.authorizations and set(server.authorizations) == {f"Bearer {KEY}"}
    written = _everything_written(pytester.path)
    state = next(v for k, v in written.items() if k.endswith("scenario_state.json"))
    assert MARKER.encode() in state  # the echo reached the outputs, redacted
    assert any(k.endswith("llmeval_report.html") for k in written)
    assert any(k.startswith("prod_env/cache/requests.sqlite") for k in written)
    assert "retrying POST" in written["run.log"].decode()
    leaks = [name for name, content in written.items() if KEY.encode() in content]
    assert leaks == []
    assert KEY not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("xdist", XDIST)
@pytest.mark.parametrize("content", [b"\x00\x93garbage" * 64, b"just some notes, not a database\n" * 40])
def test_a_cache_file_that_is_not_sqlite_is_one_clear_line(pytester: pytest.Pytester, xdist: list[str],
                                                           content: bytes) -> None:
    """Random bytes or text at the cache path: a usage error naming the file and the way out."""
    cache = pytester.path / "prod_env" / "cache" / "requests.sqlite"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(content)
    pytester.makepyfile(test_plain="def test_nothing():\n    pass\n")
    result = pytester.runpytest(*xdist)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    [line] = [line for line in output.splitlines() if "requests.sqlite" in line]
    assert f"file {cache}: is not a readable SQLite database" in line
    assert f"mv {cache} {cache}.bad" in line and "--llmeval-disable-cache" in line
    assert cache.read_bytes() == content  # left as it was

    pytester.runpytest("--llmeval-disable-cache", *xdist).assert_outcomes(passed=1)
