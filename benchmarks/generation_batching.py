"""Greedy generation (GSM8K, 5-shot chain of thought) one request at a time and in batches.

Decoding reads every weight once per step whatever the batch size, so on a CPU too a batch
of requests decodes almost as fast as one. Runs the same GSM8K requests (the bundled model,
HELM's prompt with examples from the held-out rows, at most ``--max-tokens`` new tokens)
through the Hugging Face client with batch sizes 1 and ``--batch``, in one process, and
prints generated tokens/s for each (medians of ``--repeats``), the ratio, and how many
completions came out identical.

    python benchmarks/generation_batching.py [--instances 8] [--batch 8] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if (ROOT.parent / "shared" / "data").is_dir():
    os.environ.setdefault("LLMEVAL_DATA_DIR", str(ROOT.parent / "shared" / "data"))

from pytest_llmeval.adapters import adapt  # noqa: E402
from pytest_llmeval.clients import Credentials, make_client  # noqa: E402
from pytest_llmeval.clients.huggingface import HuggingFaceClient  # noqa: E402
from pytest_llmeval.registry import DEFAULT_MODEL, Registry  # noqa: E402
from pytest_llmeval.requests import Request  # noqa: E402
from pytest_llmeval.runspec import Description, build_run_spec  # noqa: E402
from pytest_llmeval.scenarios import DataLocator  # noqa: E402


def gsm_requests(count: int, max_tokens: int) -> list[Request]:
    deployment = Registry.load().deployment(DEFAULT_MODEL)
    spec = build_run_spec(Description.parse("gsm:examples_from=heldout"), DEFAULT_MODEL, deployment.model_name)
    instances = spec.build_scenario(DataLocator.from_settings(None)).get_instances()
    states = adapt(spec.adapter_spec, instances)
    return [dataclasses.replace(s.request, max_tokens=max_tokens) for s in states[:count]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    requests = gsm_requests(args.instances, args.max_tokens)
    client = make_client(Registry.load().deployment(DEFAULT_MODEL), Credentials())
    assert isinstance(client, HuggingFaceClient)
    client.generate(requests[:1])  # load the model and warm up
    rates: dict[int, list[float]] = {1: [], args.batch: []}
    texts: dict[int, list[str]] = {}
    for repeat in range(args.repeats):
        for size in rates:
            client._batch_size = size
            started = time.perf_counter()
            results = client.generate(requests)
            seconds = time.perf_counter() - started
            tokens = sum(len(r.completions[0].tokens) for r in results)
            rates[size].append(tokens / seconds)
            texts[size] = [r.text for r in results]
            print(f"run {repeat + 1}, batch {size}: {tokens} tokens in {seconds:.1f} s", flush=True)
    one, many = statistics.median(rates[1]), statistics.median(rates[args.batch])
    same = sum(a == b for a, b in zip(texts[1], texts[args.batch]))
    print(f"\nGSM8K, {len(requests)} requests, at most {args.max_tokens} new tokens, {DEFAULT_MODEL} (fp32, CPU), "
          f"medians of {args.repeats}")
    print(f"{'batch size':12s} {'tokens/s':>9s}")
    print(f"{1:<12d} {one:9.1f}")
    print(f"{args.batch:<12d} {many:9.1f}")
    print(f"ratio: {many / one:.2f}; identical completions: {same} of {len(requests)}")


if __name__ == "__main__":
    main()
