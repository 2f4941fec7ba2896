"""A fleet of OpenAI-compatible servers behind one deployment (``base_url`` a list).

The pool's bookkeeping is tested with a fake clock; the client against three real scripted
servers on loopback, one of which dies mid-run (it drops a request and stops listening after
serving a set number), and end to end through pytest, serially and with ``-n 2``.
"""

from __future__ import annotations

import json
import logging
import re
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients import Credentials, make_client
from pytest_llmeval.clients.cache import CachingClient, RequestCache, cache_key
from pytest_llmeval.clients.openai_compatible import OpenAICompatibleClient
from pytest_llmeval.clients.replicas import FleetDown, ReplicaPool
from pytest_llmeval.errors import ClientError, ConfigError
from pytest_llmeval.registry import Registry
from pytest_llmeval.requests import Message, Request, RequestResult
from tests.servers import JSONHandler, LoopbackHTTPServer, ServedModel, free_port

ROOT = Path(__file__).resolve().parents[1]

SECRET = "sk-fleet-secret-0123456789abcdef"
XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]


# --- the pool, on a fake clock -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_pool(count: int = 3, capacity: int = 2, cooldown: float = 30.0) -> tuple[ReplicaPool, FakeClock]:
    clock = FakeClock()
    urls = [f"http://10.0.0.{i}:8000/v1" for i in range(count)]
    return ReplicaPool(urls, capacity, cooldown, label="the test fleet", clock=clock, wait_s=0.01), clock


def test_dispatch_goes_to_the_least_busy_replica_up_to_its_capacity() -> None:
    pool, _ = make_pool(capacity=2)
    leases = [pool.acquire() for _ in range(6)]
    assert [lease.replica.index for lease in leases] == [0, 1, 2, 0, 1, 2]
    assert all(r.in_flight == 2 for r in pool.replicas)
    pool.answered(leases[4])  # replica 1 has a free slot now, the others none
    assert pool.acquire().replica.index == 1


def test_a_full_pool_blocks_until_a_slot_is_free() -> None:
    pool, _ = make_pool(count=2, capacity=1)
    first, second = pool.acquire(), pool.acquire()
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire().replica.index))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and got == []
    pool.answered(second)
    waiter.join(5)
    assert got == [second.replica.index]
    assert first.replica.in_flight == 1


def test_a_failed_replica_is_out_for_the_cooldown_then_probed_and_put_back(caplog: pytest.LogCaptureFixture) -> None:
    pool, clock = make_pool(cooldown=30)
    lease = pool.acquire()
    assert lease.replica.index == 0 and not lease.probe
    with caplog.at_level(logging.WARNING, "pytest_llmeval.http"):
        pool.failed(lease, "POST http://10.0.0.0:8000/v1/chat/completions failed after 6 attempts:\nconnection error")
    assert not pool.replicas[0].live
    assert pool.live_urls() == ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]
    assert "replica http://10.0.0.0:8000/v1 taken out for 30 s (2 of 3 live)" in caplog.text
    assert "\n" not in pool.replicas[0].last_error

    clock.now += 29.9
    leases = [pool.acquire() for _ in range(4)]
    assert {lease.replica.index for lease in leases} == {1, 2}  # still cooling down
    for lease in leases:
        pool.answered(lease)

    clock.now += 0.2
    probe = pool.acquire()
    assert probe.probe and probe.replica.index == 0
    other = pool.acquire()  # one probe at a time: the next request goes to a live replica
    assert not other.probe and other.replica.index in (1, 2)
    with caplog.at_level(logging.WARNING, "pytest_llmeval.http"):
        pool.answered(probe)
    assert pool.replicas[0].live
    assert "replica http://10.0.0.0:8000/v1 answered again and is back (3 of 3 live)" in caplog.text
    assert pool.acquire().replica.index == 0  # the least busy again


def test_a_failed_probe_restarts_the_cooldown() -> None:
    pool, clock = make_pool(count=2, cooldown=10)
    pool.failed(pool.acquire(), "timeout after 5 s")
    clock.now += 10
    probe = pool.acquire()
    assert probe.probe
    clock.now += 3
    pool.failed(probe, "timeout after 5 s")
    assert pool.replicas[0].out_until == clock.now + 10
    clock.now += 9
    assert not pool.acquire().probe


def test_an_answer_that_is_no_probe_does_not_put_a_replica_back() -> None:
    """Requests sent before the replica failed may still finish; only a probe brings it back."""
    pool, _ = make_pool(count=2, capacity=2)
    early, failing = pool.acquire(), pool.acquire()
    late = pool.acquire()
    assert early.replica is late.replica
    pool.failed(late, "HTTP 503")
    pool.answered(early)
    assert not early.replica.live
    pool.released(failing)
    assert failing.replica.in_flight == 0 and failing.replica.live and failing.replica.failures == 0


def test_every_replica_out_is_one_line_naming_them_and_the_last_error() -> None:
    pool, clock = make_pool(cooldown=30)
    for error in ("connection error (refused)", "timeout after 5 s", "HTTP 502: bad gateway"):
        pool.failed(pool.acquire(), error)
    with pytest.raises(FleetDown) as raised:
        pool.acquire()
    message = str(raised.value)
    assert isinstance(raised.value, ClientError)
    assert message == ("all 3 replicas of the test fleet are down (http://10.0.0.0:8000/v1, http://10.0.0.1:8000/v1, "
                       "http://10.0.0.2:8000/v1); last error: HTTP 502: bad gateway")
    clock.now += 30  # after the cool-down a probe is allowed again: not down any more
    assert pool.acquire().probe


def test_a_probe_under_way_is_waited_for_rather_than_calling_the_fleet_down() -> None:
    pool, clock = make_pool(count=1, cooldown=5)
    pool.failed(pool.acquire(), "connection error")
    clock.now += 5
    probe = pool.acquire()
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire().probe))
    waiter.start()
    waiter.join(0.1)
    assert waiter.is_alive()
    pool.answered(probe)
    waiter.join(5)
    assert got == [False]


# --- real servers on loopback --------------------------------------------------------------------


class Tally:
    """Requests in flight over every server of a test."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0


class FleetServer(LoopbackHTTPServer):
    """An OpenAI-compatible chat server answering one letter picked by the prompt's length.

    ``die_after``: after serving that many requests it drops the next one and stops listening,
    as a killed process does. ``broken``: answers HTTP 503 (echoing the Authorization header).
    """

    def __init__(self, die_after: int | None = None, delay: float = 0.0, tally: Tally | None = None) -> None:
        self.die_after = die_after
        self.delay = delay
        self.broken = False
        self.served = 0
        self.tally = tally or Tally()
        self.lock = threading.Lock()
        self._dead = False
        server = self

        class Handler(JSONHandler):
            def do_POST(self) -> None:
                body = self.read_json()
                with server.lock:
                    dying = server.die_after is not None and server.served >= server.die_after
                    if not dying and not server.broken:
                        server.served += 1
                if dying:
                    self.close_connection = True
                    server.kill()
                    return
                with server.tally.lock:
                    server.tally.in_flight += 1
                    server.tally.max_in_flight = max(server.tally.max_in_flight, server.tally.in_flight)
                try:
                    time.sleep(server.delay)
                finally:
                    with server.tally.lock:
                        server.tally.in_flight -= 1
                if server.broken:
                    status, answer = 503, {"error": {"message": f"overloaded; {self.headers.get('Authorization')}"}}
                else:
                    content = body["messages"][-1]["content"]
                    status, answer = 200, {"object": "chat.completion", "model": body["model"], "choices": [{
                        "index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": " " + "ABCD"[len(content) % 4]}}]}
                self.send_json(status, answer)

        super().__init__(Handler)
        self.base_url = f"{self.url}/v1"

    def kill(self) -> None:
        """Stop listening (from any thread but the serving one): new connections are refused."""
        with self.lock:
            if self._dead:
                return
            self._dead = True
        self.httpd.shutdown()
        self.httpd.server_close()


def fleet_client(urls: list[str] | str, **kwargs: Any) -> OpenAICompatibleClient:
    options: dict[str, Any] = {"model": "fleet-model", "backoff": 0.01, "timeout": 10, "max_retries": 2,
                               "concurrency": 2}
    options.update(kwargs)
    return OpenAICompatibleClient(base_url=urls, **options)


def prompts(count: int) -> list[Request]:
    return [Request(model_deployment="fleet", prompt="question " + "x" * i, max_tokens=1) for i in range(count)]


def texts(results: list[RequestResult]) -> list[str]:
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    return [r.completions[0].text for r in results]


def test_requests_are_spread_over_every_replica_with_concurrency_per_replica() -> None:
    tally = Tally()
    with FleetServer(delay=0.05, tally=tally) as a, FleetServer(delay=0.05, tally=tally) as b, \
            FleetServer(delay=0.05, tally=tally) as c:
        client = fleet_client([a.base_url, b.base_url, c.base_url])
        results = client.generate(prompts(30))
        with FleetServer() as single:
            reference = fleet_client(single.base_url).generate(prompts(30))
    assert texts(results) == texts(reference)
    assert all(server.served > 0 for server in (a, b, c)) and a.served + b.served + c.served == 30
    assert 2 < tally.max_in_flight <= 6  # concurrency 2 on each of three replicas
    assert client.batch_hint == 6


def test_a_replica_killed_mid_run_leaves_the_run_to_the_others(caplog: pytest.LogCaptureFixture) -> None:
    with FleetServer(die_after=4, delay=0.01) as a, FleetServer(delay=0.01) as b, FleetServer(delay=0.01) as c:
        client = fleet_client([a.base_url, b.base_url, c.base_url])
        with caplog.at_level(logging.WARNING, "pytest_llmeval.http"):
            results = client.generate(prompts(40))
        with FleetServer() as single:
            reference = fleet_client(single.base_url).generate(prompts(40))
    assert texts(results) == texts(reference)
    assert a.served == 4 and b.served + c.served == 36
    assert client.pool is not None and client.pool.live_urls() == [b.base_url, c.base_url]
    assert f"replica {a.base_url} taken out for 30 s (2 of 3 live)" in caplog.text


def test_a_broken_replica_comes_back_after_its_cooldown() -> None:
    with FleetServer() as a, FleetServer() as b:
        a.broken = True
        client = fleet_client([a.base_url, b.base_url], cooldown=0.3, max_retries=1, api_key=SECRET)
        first = client.generate(prompts(10))
        assert b.served == 10 and a.served == 0
        assert client.pool is not None and client.pool.live_urls() == [b.base_url]
        a.broken = False
        time.sleep(0.35)
        second = client.generate(prompts(10))
    assert texts(first) == texts(second)
    assert a.served > 0 and client.pool.live_urls() == [a.base_url, b.base_url]


def test_every_replica_down_is_one_line_naming_them_with_the_key_redacted() -> None:
    with FleetServer() as a, FleetServer() as b:
        a.broken = b.broken = True
        dead = f"http://127.0.0.1:{free_port()}/v1"
        client = fleet_client([a.base_url, b.base_url, dead], max_retries=1, api_key=SECRET)
        with pytest.raises(FleetDown) as raised:
            client.generate(prompts(5))
    message = str(raised.value)
    assert "\n" not in message and SECRET not in message
    assert message.startswith(f"all 3 replicas of the fleet-model fleet are down ({a.base_url}, {b.base_url}, {dead}); "
                              "last error: POST ")
    assert message.endswith("(5 of 5 requests unanswered)")
    assert "HTTP 503" in message or "connection error" in message


def test_answers_returned_before_the_fleet_went_down_are_cached_and_the_key_ignores_the_urls(
        tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "cache.sqlite")
    with FleetServer(die_after=3) as a, FleetServer(die_after=2) as b:
        caching = CachingClient("fleet", lambda: fleet_client([a.base_url, b.base_url]), None, cache)
        with pytest.raises(ClientError, match="all 2 replicas of the fleet-model fleet are down"):
            caching.generate(prompts(12))
    assert caching.misses == 12
    with FleetServer() as c, FleetServer() as d, FleetServer() as e:  # another fleet of the same model
        again = CachingClient("fleet", lambda: fleet_client([e.base_url, d.base_url, c.base_url]), None, cache)
        results = again.generate(prompts(12))
        assert c.served + d.served + e.served == 12 - 5
    assert again.hits == 5 and sum(r.cached for r in results) == 5
    with FleetServer() as single:
        assert texts(results) == texts(fleet_client(single.base_url).generate(prompts(12)))


def test_a_stream_closed_early_sends_no_more_requests() -> None:
    """A run stopped mid-call (Ctrl-C, a failing item) drops the requests not yet sent."""
    with FleetServer(delay=0.1) as a, FleetServer(delay=0.1) as b:
        client = fleet_client([a.base_url, b.base_url], concurrency=1)
        stream = client.generate_stream(prompts(20))
        positions, _ = next(stream)
        stream.close()
        time.sleep(0.3)
        assert len(positions) >= 1 and a.served + b.served <= 4
        assert texts(client.generate(prompts(2))) == texts(fleet_client(a.base_url).generate(prompts(2)))


# --- identity and configuration --------------------------------------------------------------------


def test_a_single_base_url_keeps_its_identity() -> None:
    client = fleet_client("http://127.0.0.1:8000/v1/", api="completions")
    assert client.pool is None
    assert client.identity() == {"class": "pytest_llmeval.clients.OpenAICompatibleClient",
                                 "base_url": "http://127.0.0.1:8000/v1", "model": "fleet-model",
                                 "api": "completions"}


def test_a_fleet_is_identified_by_model_and_name_not_by_its_urls() -> None:
    request = prompts(1)[0]
    fleets = [["http://a:1/v1", "http://b:1/v1", "http://c:1/v1"], ["http://c:1/v1", "http://a:1/v1"],
              ["http://a:1/v1", "http://b:1/v1", "http://c:1/v1", "http://d:1/v1"], ["http://z:9/v1"]]
    keys = {cache_key("d", fleet_client(urls).identity(), request) for urls in fleets}
    assert len(keys) == 1
    assert fleet_client(fleets[0]).identity() == {"class": "pytest_llmeval.clients.OpenAICompatibleClient",
                                                  "fleet": None, "model": "fleet-model", "api": "chat"}
    named = fleet_client(fleets[0], fleet="dp-ranks-v2").identity()
    assert named["fleet"] == "dp-ranks-v2"
    assert cache_key("d", named, request) not in keys
    assert cache_key("d", fleet_client("http://a:1/v1").identity(), request) not in keys


@pytest.mark.parametrize(("kwargs", "field", "words"), [
    ({"base_url": []}, "client_spec.args.base_url", "non-empty list"),
    ({"base_url": ["http://a:1/v1", "ftp://b/v1"]}, "client_spec.args.base_url[1]", "'ftp://b/v1' is not an http"),
    ({"base_url": ["http://a:1/v1", "http://a:1/v1/"]}, "client_spec.args.base_url[1]", "listed twice"),
    ({"base_url": "http://a:1/v1", "fleet": "f"}, "client_spec.args.fleet", "with a list of base_url"),
    ({"base_url": ["http://a:1/v1"], "cooldown": -1}, "client_spec.args.cooldown", ">= 0"),
])
def test_bad_fleet_arguments_name_the_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        OpenAICompatibleClient(model="m", **kwargs)
    assert raised.value.field == field and words in str(raised.value)


def test_the_readme_fleet_loads_through_the_registry(tmp_path: Path) -> None:
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
               if "vllm-fleet/" in b]
    (tmp_path / "model_deployments.yaml").write_text(block)
    deployment = Registry.load(tmp_path).deployment("vllm-fleet/llama-3.1-8b-instruct")
    client = make_client(deployment, Credentials())
    assert isinstance(client, OpenAICompatibleClient) and client.pool is not None
    assert client.pool.live_urls() == ["http://gpu1:8000/v1", "http://gpu2:8000/v1", "http://gpu3:8000/v1"]
    assert client.pool.cooldown == 30 and client.batch_hint == 48
    assert client.identity()["fleet"] == "llama-8b-v1" and "base_url" not in client.identity()


@pytest.mark.slow
def test_a_fleet_of_transformers_serve_and_a_dead_replica_answers_as_the_server_alone(
        served_model: ServedModel) -> None:
    """The bundled SmolLM2 behind ``transformers serve``, listed with a replica that is not up."""
    if not served_model.running:
        served_model.start()
    requests = [Request(model_deployment="served", messages=(Message("user", f"Count to {n}."),), max_tokens=6,
                        temperature=0.0) for n in range(1, 7)]
    dead = f"http://127.0.0.1:{free_port()}/v1"
    options: dict[str, Any] = {"model": served_model.model, "concurrency": 2, "backoff": 0.01, "max_retries": 1,
                               "timeout": 60}
    client = OpenAICompatibleClient(base_url=[dead, served_model.base_url], **options)
    fleet = client.generate(requests)
    alone = OpenAICompatibleClient(base_url=served_model.base_url, **options).generate(requests)
    assert texts(fleet) == texts(alone) and all(texts(fleet))
    assert client.pool is not None and client.pool.live_urls() == [served_model.base_url]


# --- end to end ---------------------------------------------------------------------------------------


def _deployments(base_url: str) -> str:
    return textwrap.dedent(f"""
        model_deployments:
          - name: fleet/letters
            model_name: fleet/letters
            client_spec:
              class_name: pytest_llmeval.clients.OpenAICompatibleClient
              args: {{base_url: {base_url}, model: letters, api: chat, concurrency: 2, max_retries: 2,
                      backoff: 0.01}}
    """)


def _answers(root: Path) -> dict[str, dict[str, str]]:
    """Each run's answer per request, keyed by run folder and instance."""
    answers: dict[str, dict[str, str]] = {}
    for state_file in sorted((root / "runs" / "default").glob("*/scenario_state.json")):
        states = json.loads(state_file.read_text())["request_states"]
        assert all(s["result"]["success"] for s in states)
        answers[state_file.parent.name] = {f"{s['instance']['id']}/{s['train_trial_index']}":
                                           s["result"]["completions"][0]["text"] for s in states}
    return answers


@pytest.mark.parametrize("xdist", XDIST)
def test_an_eval_on_a_fleet_survives_a_dead_replica_and_matches_one_server(pytester: pytest.Pytester,
                                                                           xdist: list[str]) -> None:
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy, mmlu:subject=virology]\n")
    common = ["--llmeval-models", "fleet/letters", "--llmeval-max-eval-instances", "8", "--llmeval-disable-cache"]
    deployments = pytester.path / "prod_env" / "model_deployments.yaml"
    with FleetServer() as single:
        deployments.write_text(_deployments(f'"{single.base_url}"'))
        pytester.runpytest(*common, "--llmeval-output-path", "single").assert_outcomes(passed=2)
    with FleetServer(die_after=3, delay=0.01) as a, FleetServer(delay=0.01) as b, FleetServer(delay=0.01) as c:
        deployments.write_text(_deployments(f'["{a.base_url}", "{b.base_url}", "{c.base_url}"]'))
        result = pytester.runpytest(*common, "--llmeval-output-path", "fleet", *xdist)
    result.assert_outcomes(passed=2)
    assert a.served == 3 and b.served > 0 and c.served > 0 and a.served + b.served + c.served == 16
    fleet, reference = _answers(pytester.path / "fleet"), _answers(pytester.path / "single")
    assert len(reference) == 2 and all(len(v) == 8 for v in reference.values())
    assert fleet == reference


def test_an_eval_on_a_fleet_that_is_down_fails_in_one_line(pytester: pytest.Pytester) -> None:
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(3)]
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(
        _deployments("[" + ", ".join(f'"{url}"' for url in dead) + "]"))
    result = pytester.runpytest("--llmeval-models", "fleet/letters", "--llmeval-max-eval-instances", "3",
                                "--llmeval-disable-cache")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*all 3 replicas of the letters fleet are down ({', '.join(dead)}); "
                                 "last error: POST *connection error*(3 of 3 requests unanswered)*"])
