"""Taboo episodes on the bundled model one at a time against all of them in lockstep.

Plays ``--episodes`` taboo episodes (self-play; high_en's prompts and rules, with targets from
taboo's word list: the 12 common words, then the medium ones) on local/smollm2-135m-instruct
through the Hugging Face client, without a request cache, so every reply is generated. Each
repeat plays them once with ``parallel_episodes: off`` and once with ``auto`` (lockstep: each
turn's calls of every episode under way form one batch), in one process after one warm-up
call. Prints the median seconds of each, the speed-up, the batch sizes, and whether every
episode's records (interactions turns and keys without timestamps, scores, player request files)
came out identical.

``--batch-size`` sets the Hugging Face client's ``batch_size``, which then also caps a turn's
batch (without it a turn is one batch, whatever the default of 8 on a CPU); one at a time is
unaffected by it.

    python benchmarks/lockstep_episodes.py [--episodes 20] [--repeats 3] [--batch-size 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pytest_llmeval.clients import Credentials, make_client  # noqa: E402
from pytest_llmeval.clients.cache import CachingClient  # noqa: E402
from pytest_llmeval.clients.huggingface import HuggingFaceClient  # noqa: E402
from pytest_llmeval.games import GameRunResult, discover_games, play_experiment  # noqa: E402
from pytest_llmeval.games.episode_files import timeless  # noqa: E402
from pytest_llmeval.games.game_window import ChatTokenCounter  # noqa: E402
from pytest_llmeval.games.player_models import HandleModel  # noqa: E402
from pytest_llmeval.model import ModelHandle  # noqa: E402
from pytest_llmeval.registry import DEFAULT_MODEL, Registry  # noqa: E402
from pytest_llmeval.registry.entries import ObjectSpec  # noqa: E402


def experiment(count: int) -> dict[str, Any]:
    """high_en with ``count`` targets from taboo's own word list (it ships 6 per experiment)."""
    spec = discover_games()["taboo"]
    base = spec.load_instances()["experiments"][0]
    words = json.loads((spec.game_path / "resources" / "words.json").read_text(encoding="utf-8"))
    entries = [*words["high"], *words["medium"], *words["low"]][:count]
    instances = [{"game_id": i, "target_word": e["target"], "related_word": list(e["related"])}
                 for i, e in enumerate(entries)]
    return {**base, "game_instances": instances}


def stable(run: GameRunResult) -> list[str]:
    return [json.dumps(timeless([e.name, e.interactions, e.scores, e.player_requests])) for e in run.episodes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="the client's batch_size (default: its own)")
    args = parser.parse_args()
    registry = Registry.load()
    deployment = registry.deployment(DEFAULT_MODEL)
    if args.batch_size:
        spec_args = {**deployment.client_spec.args, "batch_size": args.batch_size}
        deployment = dataclasses.replace(deployment, client_spec=ObjectSpec(deployment.client_spec.class_name,
                                                                            spec_args))
    client = make_client(deployment, Credentials())
    assert isinstance(client, HuggingFaceClient)
    handle = ModelHandle(deployment, registry.model_metadata(deployment.model_name),
                         CachingClient(deployment.name, lambda: client, None, None))  # no cache: all generated
    spec = discover_games()["taboo"]
    chosen = experiment(args.episodes)
    handle.chat("Hello", max_tokens=4)  # load the model and warm up
    seconds: dict[str, list[float]] = {"off": [], "auto": []}
    reference: list[str] | None = None
    identical = True
    batches: list[int] = []
    requests = 0
    for _ in range(args.repeats):
        for mode in seconds:
            model = HandleModel(handle, max_tokens=spec.max_tokens, counter=ChatTokenCounter(None, client))
            sizes: list[int] = []
            original = model.generate_batch
            model.generate_batch = lambda calls, original=original, sizes=sizes: (  # type: ignore[method-assign]
                sizes.append(len(calls)) or original(calls))
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                run = play_experiment(spec, chosen, [model], Path(folder), None, None, mode)
                seconds[mode].append(time.perf_counter() - started)
            records = stable(run)
            reference = reference if reference is not None else records
            identical = identical and records == reference
            if mode == "auto":
                batches = sizes
            requests = run.requests
            print(f"  {mode:>4}: {seconds[mode][-1]:7.1f} s, {run.requests} requests, "
                  f"{len(run.episodes)} episodes, % played {100 * run.played:.0f}", flush=True)
    off, auto = statistics.median(seconds["off"]), statistics.median(seconds["auto"])
    print(f"taboo, {args.episodes} episodes, {requests} requests, bundled model on {client._device()}, "
          f"client batch_size {client.batch_size}, {args.repeats} runs each")
    print(f"one at a time: {off:.1f} s (median)")
    print(f"lockstep:      {auto:.1f} s (median), batches {batches}")
    print(f"speed-up:      {off / auto:.2f}x")
    print(f"records identical: {identical}")
    if not identical:
        raise SystemExit("the records differ between one at a time and lockstep")


if __name__ == "__main__":
    main()
