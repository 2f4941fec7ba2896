"""Workload W: MMLU anatomy, 5-shot joint prompt, all 135 test questions, the bundled model (fp32).

Runs the same work several ways, each in a fresh process so its peak memory is its own:
  loop         a plain loop of full forward passes, one prompt at a time (the reference
               for answers and log-probabilities)
  prefix_loop  plain torch with the 5-shot prefix's key/value cache computed once and
               copied into batches of 8 (a careful hand-written loop)
  plugin       ``pytest`` with pytest-llmeval, cache disabled: model time (every batch and
               the shared prefix, from the results' ``request_time``), the run, and the whole
               process
  plugin_bf16  the same with the bundled deployment's weights in bf16 (``torch_dtype:
               bfloat16``): its model time against fp32's, the answers that agree and the
               largest log-probability gap
  model        the model's own footprint: load it and run one prompt
  runtime      torch and transformers imported, nothing loaded
It also measures this CPU's fp32 matrix-multiply rate and, from the model's shape and the
prompts' token counts, the floor: the floating-point work with the prefix shared, at that
rate. The issue's own figures were taken on a CPU about twice as fast; the last lines scale
ours by the ratio of the two plain loops to compare against its targets.

    python benchmarks/throughput_mmlu.py [--repeats 3] [--subject anatomy]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
BUNDLED = "local/smollm2-135m-instruct"

# The issue's table (its machine: 330-360 GFLOP/s fp32), for reference next to ours.
ISSUE_ROWS = [("HELM 0.5.16", 65.0, 2.1), ("lm-evaluation-harness 0.4.13, batch 1", 88.0, 1.5),
              ("plain torch loop, full prompts", 59.0, 2.3), ("plain torch, prefix reused, batch 8", 15.5, 8.7),
              ("floor (prefix shared, 330-360 GFLOP/s)", 6.6, 21.0)]
ISSUE_PLAIN_LOOP = 2.3
TARGET_RATE, TARGET_PROCESS = 16.0, 10.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workload(subject: str) -> tuple[list[str], str]:
    """W's prompts as the plugin builds them, and the converted model folder."""
    from pytest_llmeval.adapters import adapt
    from pytest_llmeval.clients.hf_loading import converted_copy, resolve_source
    from pytest_llmeval.registry import Registry
    from pytest_llmeval.runspec import Description, build_run_spec
    from pytest_llmeval.scenarios import DataLocator

    deployment = Registry.load().deployment(BUNDLED)
    spec = build_run_spec(Description.parse(f"mmlu:subject={subject},eval_split=test"), BUNDLED,
                          deployment.model_name)
    instances = spec.build_scenario(DataLocator.from_settings(None)).get_instances()
    prompts = [s.request.prompt for s in adapt(spec.adapter_spec, instances)]
    args = deployment.client_spec.args
    return prompts, str(converted_copy(resolve_source(args["pretrained_model_name_or_path"], args["gguf_file"])))


def bf16_registry(folder: Path) -> str:
    """A ``prod_env/`` beside the run naming the bundled weights in bf16; the deployment's name."""
    from pytest_llmeval.registry import Registry

    bundled = Registry.load().deployment(BUNDLED)
    args = {**bundled.client_spec.args, "torch_dtype": "bfloat16"}
    name = f"{BUNDLED}-bf16"
    (folder / "prod_env").mkdir()
    (folder / "prod_env" / "model_deployments.yaml").write_text(json.dumps({"model_deployments": [{
        "name": name, "model_name": bundled.model_name, "tokenizer_name": bundled.tokenizer_name,
        "max_sequence_length": bundled.max_sequence_length,
        "client_spec": {"class_name": bundled.client_spec.class_name, "args": args}}]}))
    return name


def run_plugin(subject: str, bf16: bool = False) -> dict[str, object]:
    import pytest

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "eval_bench.yaml").write_text(f"entries: [\"mmlu:subject={subject},eval_split=test\"]\n")
        junit = folder / "junit.xml"
        local = ["--llmeval-local-path", str(folder / "prod_env")] if bf16 else []
        model = bf16_registry(folder) if bf16 else BUNDLED
        code = pytest.main([str(folder / "eval_bench.yaml"), "-q", "-p", "no:cacheprovider", "--rootdir", tmp, *local,
                            "--llmeval-disable-cache", "--llmeval-models", model, "--junitxml", str(junit)])
        if code != 0:
            raise SystemExit(f"pytest exited with {code}")
        [case] = ET.parse(junit).getroot().iter("testcase")
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        state = json.loads((Path(str(props["llmeval_output"])) / "scenario_state.json").read_text())
        results = [s["result"] for s in state["request_states"]]
        completions = [r["completions"][0] for r in results]
        # Model time: every batch and the shared prefix (each request carries its share), as
        # the loops below time their forward passes; the run's own time adds loading the model.
        return {"seconds": sum(r["request_time"] for r in results), "n": len(completions),
                "run_seconds": float(str(props["llmeval_seconds"])),
                "letters": [c["text"].strip() for c in completions],
                "logprobs": [c["tokens"][0]["logprob"] for c in completions]}


def _answer(tokenizer: Any, logits: Any) -> tuple[str, float]:
    import torch

    scores = torch.log_softmax(logits.float(), dim=-1)
    best = int(scores.argmax())
    return tokenizer.decode(best).strip(), float(scores[best])


def run_loop(subject: str) -> dict[str, object]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts, folder = workload(subject)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    encoded = [tokenizer(p, return_tensors="pt").input_ids for p in prompts]
    started = time.perf_counter()
    answers = []
    with torch.inference_mode():
        for ids in encoded:
            answers.append(_answer(tokenizer, model(ids).logits[0, -1]))
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"seconds": time.perf_counter() - started, "n": len(answers), "letters": [a for a, _ in answers],
            "logprobs": [lp for _, lp in answers], "model_mb": weights / 2**20}


def run_prefix_loop(subject: str) -> dict[str, object]:
    """The prefix computed once, its cache copied into each batch of 8 length-sorted prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts, folder = workload(subject)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    encoded = [tokenizer(p).input_ids for p in prompts]
    shared = min(next((k for k, col in enumerate(zip(*encoded)) if len(set(col)) > 1), 0), *map(len, encoded)) - 1
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    answers: dict[int, tuple[str, float]] = {}
    started = time.perf_counter()
    with torch.inference_mode():
        cache = model(torch.tensor([encoded[0][:shared]]), use_cache=True).past_key_values
        for start in range(0, len(order), 8):
            batch = order[start:start + 8]
            tails = [encoded[i][shared:] for i in batch]
            width = max(map(len, tails))
            ids = torch.full((len(batch), width), tokenizer.pad_token_id or 0)
            mask = torch.zeros((len(batch), shared + width), dtype=torch.long)
            mask[:, :shared] = 1
            for row, tail in enumerate(tails):
                ids[row, width - len(tail):] = torch.tensor(tail)
                mask[row, shared + width - len(tail):] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
            copied = copy.deepcopy(cache)
            copied.batch_repeat_interleave(len(batch))
            logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=copied,
                           logits_to_keep=1).logits[:, -1]
            for row, i in enumerate(batch):
                answers[i] = _answer(tokenizer, logits[row])
    seconds = time.perf_counter() - started
    ordered = [answers[i] for i in range(len(encoded))]
    return {"seconds": seconds, "n": len(ordered), "letters": [a for a, _ in ordered],
            "logprobs": [lp for _, lp in ordered], "flops": _flops(model.config, shared,
                                                                   [len(e) - shared for e in encoded])}


def _flops(config: Any, prefix: int, tails: list[int]) -> float:
    """Floating-point work of W with the prefix computed once: projections and MLP per token,
    attention over everything before each token, and the vocabulary projection per answer."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = hidden // heads
    attention_weights = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    per_layer = attention_weights + 3 * hidden * config.intermediate_size
    dense = 2 * per_layer * layers

    def attention(context: int) -> float:  # scores and weighted values, all heads, all layers
        return 4.0 * heads * head_dim * context * layers

    work = prefix * dense + sum(attention(k + 1) for k in range(prefix))
    for tail in tails:
        work += tail * dense + sum(attention(prefix + k + 1) for k in range(tail))
    return work + len(tails) * 2.0 * hidden * config.vocab_size


def run_model(subject: str) -> dict[str, object]:
    """The model's own footprint: loaded with transformers, one W prompt run."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts, folder = workload(subject)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.inference_mode():
        model(tokenizer(prompts[0], return_tensors="pt").input_ids)
    return {"seconds": 1.0, "n": 0}


def run_runtime(subject: str) -> dict[str, object]:
    """The runtime alone: torch and transformers imported, no model."""
    import torch  # noqa: F401
    import transformers  # noqa: F401

    return {"seconds": 1.0, "n": 0}


def run_gemm(subject: str) -> dict[str, object]:
    """This CPU's fp32 rate on the shapes W runs (a batch of ~450 tokens through the MLP)."""
    import torch

    x, w = torch.randn(448, 576), torch.randn(1536, 576)
    rates = []
    with torch.inference_mode():
        for _ in range(5):
            torch.nn.functional.linear(x, w)
        for _ in range(7):
            started = time.perf_counter()
            for _ in range(40):
                torch.nn.functional.linear(x, w)
            rates.append(40 * 2 * 448 * 576 * 1536 / (time.perf_counter() - started) / 1e9)
    return {"seconds": 1.0, "n": 0, "gflops": statistics.median(rates)}


def run_plugin_bf16(subject: str) -> dict[str, object]:
    return run_plugin(subject, bf16=True)


RUNNERS = {"plugin": run_plugin, "plugin_bf16": run_plugin_bf16, "loop": run_loop, "prefix_loop": run_prefix_loop,
           "model": run_model, "runtime": run_runtime, "gemm": run_gemm}


def _has_bf16_units() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def child(mode: str, subject: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if MIRROR.is_dir():
        os.environ.setdefault("LLMEVAL_DATA_DIR", str(MIRROR))
    result = RUNNERS[mode](subject)
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")


def measure(mode: str, subject: str) -> dict[str, Any]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--subject", subject], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"{mode} run failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(line[len("RESULT "):])
    result["process_seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--subject", default="anatomy")
    parser.add_argument("--child", choices=tuple(RUNNERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.subject)
        return
    timed = ("loop", "prefix_loop", "plugin", "plugin_bf16")
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in timed}
    for repeat in range(args.repeats):
        for mode in timed:  # alternating, so drifts in the machine's speed hit every mode alike
            result = measure(mode, args.subject)
            runs[mode].append(result)
            print(f"run {repeat + 1} {mode:11s}: {result['n'] / result['seconds']:5.2f} questions/s, "
                  f"{result['seconds']:.1f} s in the loop, {result['process_seconds']:.1f} s process, "
                  f"peak {result['peak_rss_mb']:.0f} MB", flush=True)
    footprint = {mode: measure(mode, args.subject)["peak_rss_mb"] for mode in ("runtime", "model")}
    gflops = measure("gemm", args.subject)["gflops"]

    def median(mode: str, key: str) -> float:
        return statistics.median(float(r[key]) for r in runs[mode])

    rate = {m: statistics.median(r["n"] / r["seconds"] for r in runs[m]) for m in runs}
    n = runs["loop"][0]["n"]
    floor_seconds = runs["prefix_loop"][0]["flops"] / (gflops * 1e9)
    reference = runs["loop"][0]
    exact = ("loop", "prefix_loop", "plugin")  # fp32: the same answers; bf16 is compared below
    same = all(r["letters"] == reference["letters"] for m in exact for r in runs[m])
    gap = max(abs(x - y) for m in ("prefix_loop", "plugin") for r in runs[m]
              for x, y in zip(r["logprobs"], reference["logprobs"]))
    print()
    print(f"MMLU {args.subject}, 5-shot joint, {n} test questions, {BUNDLED} (fp32, CPU); "
          f"medians of {args.repeats}; this CPU: {gflops:.0f} GFLOP/s fp32")
    print(f"{'run':44s} {'process s':>10s} {'loop s':>8s} {'questions/s':>12s} {'peak MB':>8s}")
    for label, process, questions in ISSUE_ROWS:
        print(f"{'[issue] ' + label:44s} {process:10.1f} {'':>8s} {questions:12.1f}")
    labels = {"loop": "plain torch loop, full prompts", "prefix_loop": "plain torch, prefix reused, batch 8",
              "plugin": "pytest-llmeval", "plugin_bf16": "pytest-llmeval, bf16 weights"}
    for mode in timed:
        print(f"{'[here] ' + labels[mode]:44s} {median(mode, 'process_seconds'):10.1f} "
              f"{median(mode, 'seconds'):8.1f} {rate[mode]:12.2f} {median(mode, 'peak_rss_mb'):8.0f}")
    print(f"{'[here] floor (prefix shared, this CPU)':44s} {'':>10s} {floor_seconds:8.1f} {n / floor_seconds:12.2f}")
    print()
    print(f"pytest-llmeval's run, loading the model included: {median('plugin', 'run_seconds'):.1f} s")
    print(f"ratio pytest-llmeval / plain loop (questions/s): {rate['plugin'] / rate['loop']:.2f}; "
          f"/ prefix loop: {rate['plugin'] / rate['prefix_loop']:.2f}; share of this CPU's floor: "
          f"{rate['plugin'] / (n / floor_seconds):.0%}")
    print(f"same predictions in every run: {'yes' if same else 'NO'}; largest gap in the answer's log-probability "
          f"against the plain loop: {gap:.1e} (limit 1e-4)")
    bf16 = runs["plugin_bf16"][0]
    agree = sum(a == b for a, b in zip(bf16["letters"], reference["letters"]))
    bf16_gap = max(abs(x - y) for x, y in zip(bf16["logprobs"], reference["logprobs"]))
    print(f"bf16 (this CPU {'has' if _has_bf16_units() else 'lacks'} AVX-512 BF16/AMX): model time "
          f"{median('plugin_bf16', 'seconds'):.1f} s against fp32's {median('plugin', 'seconds'):.1f} s -> "
          f"{median('plugin', 'seconds') / median('plugin_bf16', 'seconds'):.2f}x (target 2x); answers equal to "
          f"fp32's on {agree} of {n} ({agree / n:.1%}, target 99%); largest log-probability gap {bf16_gap:.3f}")
    plugin_peak = median("plugin", "peak_rss_mb")
    above = plugin_peak - footprint["runtime"]
    weights = float(reference["model_mb"])
    print(f"peak memory: pytest-llmeval {plugin_peak:.0f} MB; the model's own footprint (loaded, one prompt) "
          f"{footprint['model']:.0f} MB -> {plugin_peak / footprint['model']:.2f}x (target 1.3x); above the bare "
          f"runtime ({footprint['runtime']:.0f} MB): {above:.0f} MB = {above / weights:.2f}x the weights "
          f"({weights:.0f} MB)")
    factor = ISSUE_PLAIN_LOOP / rate["loop"]
    print(f"scaled to the issue's machine (its plain loop ran {factor:.2f}x faster than ours): about "
          f"{rate['plugin'] * factor:.1f} questions/s (target {TARGET_RATE:.0f}) and "
          f"{median('plugin', 'seconds') / factor:.1f} s in the loop")


if __name__ == "__main__":
    main()
