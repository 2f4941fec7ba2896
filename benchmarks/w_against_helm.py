"""Workload W as whole processes: pytest-llmeval against crfm-helm's ``helm-run``.

W is MMLU anatomy, HELM's 5-shot joint prompt, all 135 test questions, the bundled SmolLM2
model in fp32, every cache off. Both tools run as fresh processes, alternating (a pair per
repeat, so drifts in the machine's speed hit both alike), on the same data and the same
converted weights (helm-run gets a ``prod_env`` naming them and HELM's own MMLU CSV layout, so
nothing is downloaded). Printed: each run's wall time, the medians and their ratio, and a
per-question comparison: our answers against helm-run's (its ``scenario_state.json``), and our
answers and their log-probabilities against a plain loop of full-prompt forward passes
(``throughput_mmlu.py``'s reference, run once), within 1e-4. helm-run's own log-probabilities
are not compared: its client reports them after its temperature warping, not the model's.

Where our time goes is printed too, from the run's own files and a bare process: importing
the runtime, the model's time (the summed ``request_time`` of the run), and the rest.

Needs crfm-helm in an environment of its own (``.ci/helm-bridge`` builds ``.venv-helm``) and
the shared data mirror.

    python benchmarks/w_against_helm.py [--repeats 3] [--helm-run .venv-helm/bin/helm-run]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.helm_bridge_throughput import helm_mirror  # noqa: E402
from benchmarks.throughput_mmlu import measure  # noqa: E402
from benchmarks.timing import MIRROR, environment, timed_process  # noqa: E402
from tests.helm_parity import helm_run_command, prod_env  # noqa: E402

BUNDLED = "local/smollm2-135m-instruct"
ENTRY = "mmlu:subject=anatomy,eval_split=test"
QUESTIONS = 135
TOLERANCE = 1e-4
TARGET = 6.0

Answers = dict[str, tuple[str, float]]


def read_run(run_dir: Path) -> tuple[Answers, float]:
    """From a run's ``scenario_state.json``: instance id -> (completion text, its
    log-probability), and the model's own time (the requests' summed ``request_time``)."""
    state = json.loads((run_dir / "scenario_state.json").read_text())
    found: Answers = {}
    seconds = 0.0
    for request_state in state["request_states"]:
        completion = request_state["result"]["completions"][0]
        found[request_state["instance"]["id"]] = (completion["text"], float(completion["logprob"]))
        seconds += float(request_state["result"].get("request_time") or 0.0)
    return found, seconds


def only_run_dir(folder: Path) -> Path:
    dirs = [p.parent for p in folder.rglob("scenario_state.json")]
    if len(dirs) != 1:
        raise SystemExit(f"expected one run under {folder}, found {len(dirs)}")
    return dirs[0]


def ours(folder: Path, mirror: Path) -> tuple[float, Path]:
    """One pytest-llmeval process on W; its seconds and run folder."""
    folder.mkdir()
    (folder / "eval_w.yaml").write_text(f"entries: [\"{ENTRY}\"]\n")
    command = [sys.executable, "-m", "pytest", "eval_w.yaml", "-q", "-p", "no:cacheprovider", "--rootdir",
               str(folder), "-c", os.devnull, "--llmeval-disable-cache", "--llmeval-models", BUNDLED,
               "--llmeval-output-path", str(folder / "out")]
    seconds, _ = timed_process(command, folder, environment(mirror), label="pytest")
    return seconds, only_run_dir(folder / "out")


def helm(folder: Path, mirror: Path, helm_run: str, env_src: Path) -> tuple[float, Path]:
    """One ``helm-run`` process on W; its seconds and run folder."""
    shutil.copytree(env_src, folder / "prod_env")
    shutil.copytree(mirror / "helm" / "scenarios", folder / "benchmark_output" / "scenarios")
    command = helm_run_command(helm_run, ENTRY, "w", QUESTIONS)
    seconds, _ = timed_process(command, folder, {**os.environ, "HF_HUB_OFFLINE": "1"}, label="helm-run")
    return seconds, only_run_dir(folder / "benchmark_output" / "runs" / "w")


def import_seconds() -> float:
    """A bare process that imports torch and transformers, as every run does."""
    code = "import torch, transformers"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=environment())
    return time.perf_counter() - started


def same_answers(mine: Answers, theirs: Answers) -> list[str]:
    """The ids whose answers differ."""
    if set(mine) != set(theirs):
        raise SystemExit(f"the runs cover different questions: {sorted(set(mine) ^ set(theirs))[:5]}")
    return [i for i in mine if mine[i][0].strip() != theirs[i][0].strip()]


def plain_loop() -> tuple[list[str], list[float]]:
    """The reference: one full-prompt forward pass per question, in the prompts' order."""
    result = measure("loop", "anatomy")
    return list(result["letters"]), [float(x) for x in result["logprobs"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--helm-run", default=str(ROOT / ".venv-helm" / "bin" / "helm-run"),
                        help="crfm-helm's helm-run (default: the bridge environment's)")
    args = parser.parse_args()
    if not (MIRROR / "mmlu" / "test" / "anatomy_test.csv").is_file():
        raise SystemExit(f"needs the shared data mirror at {MIRROR}")
    if not Path(args.helm_run).is_file():
        raise SystemExit(f"no helm-run at {args.helm_run}: build it with .ci/helm-bridge or pass --helm-run")
    times: dict[str, list[float]] = {"pytest-llmeval": [], "helm-run": []}
    model: list[float] = []
    mine: Answers = {}
    helm_dir = Path()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mirror = helm_mirror(work / "mirror")
        env_src = prod_env(work / "prod_env_src")
        for n in range(args.repeats):
            seconds, run_dir = ours(work / f"ours_{n}", mirror)
            times["pytest-llmeval"].append(seconds)
            mine, seconds_in_model = read_run(run_dir)
            model.append(seconds_in_model)
            print(f"pair {n + 1}: pytest-llmeval {seconds:6.1f} s (model {model[-1]:.1f} s)", end="", flush=True)
            seconds, helm_dir = helm(work / f"helm_{n}", mirror, args.helm_run, env_src)
            times["helm-run"].append(seconds)
            print(f", helm-run {seconds:6.1f} s", flush=True)
        differ = same_answers(mine, read_run(helm_dir)[0])  # ours are in the prompts' order, as the loop's
        letters, logprobs = plain_loop()
        loop_equal = sum(a.strip() == b for (a, _), b in zip(mine.values(), letters))
        gap = max(abs(lp - ref) for (_, lp), ref in zip(mine.values(), logprobs))
        imports = statistics.median(import_seconds() for _ in range(3))
    median = {tool: statistics.median(values) for tool, values in times.items()}
    ratio = median["helm-run"] / median["pytest-llmeval"]
    print(f"\nW ({ENTRY}, {QUESTIONS} questions, {BUNDLED}, fp32, caches off), whole processes, "
          f"median of {args.repeats} pairs:")
    print(f"  {'tool':16s} {'median s':>9s} {'range s':>15s} {'questions/s':>12s}")
    for tool, values in times.items():
        print(f"  {tool:16s} {median[tool]:9.1f} {min(values):7.1f}-{max(values):<7.1f} "
              f"{QUESTIONS / median[tool]:12.2f}")
    print(f"  helm-run / pytest-llmeval: {ratio:.2f}x (target {TARGET:.0f}x)")
    print(f"  answers equal to helm-run's: {QUESTIONS - len(differ)} of {QUESTIONS}"
          f"{' (differ: ' + ', '.join(differ[:5]) + ')' if differ else ''}; to the plain full-prompt loop's: "
          f"{loop_equal} of {len(letters)}, largest log-probability gap {gap:.1e} (limit {TOLERANCE:.0e})")
    inside = statistics.median(model)
    outside = median["pytest-llmeval"] - inside
    print(f"  pytest-llmeval's process: model {inside:.1f} s, the rest {outside:.1f} s "
          f"(of which importing torch and transformers {imports:.1f} s)")


if __name__ == "__main__":
    main()
