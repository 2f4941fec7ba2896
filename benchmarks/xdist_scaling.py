"""A multi-subject MMLU run on the bundled model with one and with two pytest-xdist workers.

On a CPU, workers split the cores between them (each gets cpu_count // workers threads), so
two workers should never be slower than one: they run different subjects side by side and
overlap each other's Python work. Prints the whole process's seconds (medians, alternating
runs, cache disabled) and checks both gave the same answers.

    python benchmarks/xdist_scaling.py [--repeats 3] [--instances 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import environment, timed_pytest  # noqa: E402

from pytest_llmeval.registry import DEFAULT_MODEL  # noqa: E402

SUBJECTS = ("anatomy", "astronomy", "college_biology", "high_school_biology")


def answers(output: Path) -> dict[str, list[str]]:
    """Each run's predicted letters, from its scenario_state.json."""
    found = {}
    for state_file in sorted(output.glob("runs/*/*/scenario_state.json")):
        states = json.loads(state_file.read_text())["request_states"]
        found[state_file.parent.name] = [s["result"]["completions"][0]["text"] for s in states]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--instances", type=int, default=40, help="test questions per subject")
    args = parser.parse_args()
    env = environment()
    times: dict[int, list[float]] = {1: [], 2: []}
    predictions: dict[int, dict[str, list[str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "eval_subjects.yaml").write_text(
            "entries:\n" + "".join(f"  - \"mmlu:subject={s},eval_split=test\"\n" for s in SUBJECTS))
        for repeat in range(args.repeats):
            for workers in (1, 2):
                output = project / f"out{workers}"
                elapsed, _ = timed_pytest(
                    ["eval_subjects.yaml", "-q", "-p", "no:cacheprovider", "-n", str(workers),
                     "--llmeval-models", DEFAULT_MODEL, "--llmeval-disable-cache",
                     "--llmeval-max-eval-instances", str(args.instances), "--llmeval-output-path", str(output)],
                    project, env)
                times[workers].append(elapsed)
                predictions[workers] = answers(output)
                print(f"run {repeat + 1}, -n {workers}: {elapsed:.1f} s", flush=True)
    one, two = statistics.median(times[1]), statistics.median(times[2])
    same = predictions[1] == predictions[2] and len(predictions[1]) == len(SUBJECTS)
    print(f"\nMMLU {', '.join(SUBJECTS)}: {args.instances} test questions each, {DEFAULT_MODEL}, "
          f"medians of {args.repeats}")
    print(f"{'workers':10s} {'process s':>10s}")
    print(f"{'-n 1':10s} {one:10.1f}")
    print(f"{'-n 2':10s} {two:10.1f}")
    print(f"-n 2 / -n 1 time: {two / one:.2f} ({'not slower' if two <= one * 1.05 else 'SLOWER'}); "
          f"same answers: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
