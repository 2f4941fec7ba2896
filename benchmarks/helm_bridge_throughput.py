"""One HELM Lite entry three ways: built in, through crfm-helm's own scenario code, and helm-run.

``mmlu:subject=anatomy`` (HELM Lite's MMLU, 5-shot joint prompt) on the bundled SmolLM2 model,
N evaluated instances, the answer cache off, each run a fresh process, wall time of the whole
process (model load included), median of several runs:

  built in   pytest with pytest-llmeval, its own MMLU scenario
  bridge     the same, with ``LLMEVAL_HELM_SCENARIOS=mmlu``: HELM's run-spec function and
             ``MMLUScenario`` build the run, our adapter, client (batched, prefix shared) and
             metrics do the rest, as for any HELM scenario that is not built in
  helm-run   crfm-helm's own command on the same data and weights (HELM's HuggingFaceClient,
             one request at a time), given a ``prod_env`` this script writes

It also times, in a fresh process each, what differs between the first two: importing, the run
spec, the instances and the prompts (no model), so the bridge's own cost shows apart from the
model's time, which machine load makes noisy.

Needs crfm-helm (the bridge's environment, see ``.ci/helm-bridge``) and the shared data mirror.

    python benchmarks/helm_bridge_throughput.py [--repeats 3] [--instances 20] [--helm-run PATH]
"""

from __future__ import annotations

import argparse
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
from benchmarks.timing import MIRROR, environment, timed_pytest  # noqa: E402
from tests.helm_parity import helm_run_command, prod_env  # noqa: E402

BUNDLED = "local/smollm2-135m-instruct"
ENTRY = "mmlu:subject=anatomy"


def helm_mirror(target: Path) -> Path:
    """Our mirror's MMLU, also in HELM's layout (``helm/scenarios/mmlu/data/<split>/``)."""
    shutil.copytree(MIRROR / "mmlu", target / "mmlu")
    for split in ("dev", "val", "test"):
        shutil.copytree(MIRROR / "mmlu" / split, target / "helm" / "scenarios" / "mmlu" / "data" / split)
    return target



def plugin_seconds(folder: Path, mirror: Path, instances: int, bridge: bool) -> float:
    eval_file = folder / "eval_bench.yaml"
    eval_file.write_text(f"entries: [\"{ENTRY}\"]\n")
    env = environment(mirror)
    env["LLMEVAL_HELM_SCENARIOS"] = "mmlu" if bridge else ""
    seconds, _ = timed_pytest([str(eval_file), "-q", "-p", "no:cacheprovider", "--rootdir", str(folder),
                               "-c", os.devnull, "--llmeval-disable-cache", "--llmeval-models", BUNDLED,
                               "--llmeval-max-eval-instances", str(instances),
                               "--llmeval-output-path", str(folder / "out")], folder, env)
    return seconds


PREPARE = """
import os, sys, time
started = time.perf_counter()
from pytest_llmeval.adapters import adapt
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios import DataLocator
locator = DataLocator.from_settings(sys.argv[1])
spec = build_run_spec(Description.parse(sys.argv[2]), sys.argv[3], "HuggingFaceTB/SmolLM2-135M-Instruct",
                      locator=locator)
instances = spec.build_scenario(locator).get_instances()
states = adapt(spec.adapter_spec, instances)
print(time.perf_counter() - started, len(states))
"""


def prepare_seconds(mirror: Path, bridge: bool) -> float:
    """Imports, run spec, instances and every prompt of the entry, in a fresh process."""
    env = environment(mirror)
    env["LLMEVAL_HELM_SCENARIOS"] = "mmlu" if bridge else ""
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", PREPARE, str(mirror), ENTRY, BUNDLED], capture_output=True,
                          text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"preparing failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.split()[0])


def helm_run_seconds(folder: Path, mirror: Path, instances: int, helm_run: str) -> float:
    work = folder / "helm"
    shutil.copytree(prod_env(folder / "prod_env_src"), work / "prod_env", dirs_exist_ok=True)
    shutil.copytree(mirror / "helm" / "scenarios", work / "benchmark_output" / "scenarios", dirs_exist_ok=True)
    started = time.perf_counter()
    done = subprocess.run(helm_run_command(helm_run, ENTRY, "bench", instances), cwd=work,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if not list((work / "benchmark_output" / "runs" / "bench").glob("*/stats.json")):
        raise SystemExit(f"helm-run wrote no stats.json:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--helm-run", default=str(Path(sys.executable).with_name("helm-run")),
                        help="crfm-helm's helm-run (default: beside this python)")
    args = parser.parse_args()
    if not (MIRROR / "mmlu" / "test" / "anatomy_test.csv").is_file():
        raise SystemExit(f"needs the shared data mirror at {MIRROR}")
    times: dict[str, list[float]] = {"built in": [], "bridge": [], "helm-run": []}
    with tempfile.TemporaryDirectory() as tmp:
        mirror = helm_mirror(Path(tmp) / "mirror")
        prepare = {way: statistics.median(prepare_seconds(mirror, way == "bridge") for _ in range(max(3, args.repeats)))
                   for way in ("built in", "bridge")}
        print(f"imports, run spec, instances, prompts: built in {prepare['built in']:.2f} s, "
              f"bridge {prepare['bridge']:.2f} s", flush=True)
        for n in range(args.repeats):
            for way in times:
                folder = Path(tmp) / f"{way.replace(' ', '_')}_{n}"
                folder.mkdir()
                if way == "helm-run":
                    seconds = helm_run_seconds(folder, mirror, args.instances, args.helm_run)
                else:
                    seconds = plugin_seconds(folder, mirror, args.instances, bridge=way == "bridge")
                times[way].append(seconds)
                print(f"  {way:9s} run {n + 1}: {seconds:6.1f} s", flush=True)
    median = {way: statistics.median(values) for way, values in times.items()}
    print(f"\n{ENTRY}, {args.instances} instances, {BUNDLED}, median of {args.repeats} (whole process):")
    for way, seconds in median.items():
        print(f"  {way:9s} {seconds:6.1f} s  {args.instances / seconds:5.2f} instances/s")
    print(f"  bridge / built in: {median['bridge'] / median['built in']:.2f}x the time")
    print(f"  helm-run / bridge: {median['helm-run'] / median['bridge']:.2f}x, "
          f"helm-run / built in: {median['helm-run'] / median['built in']:.2f}x")


if __name__ == "__main__":
    main()
