"""Collecting 10,000 items: 57 MMLU subjects x 176 registered models.

Writes a throw-away project (an eval file with one entry per subject, a prod_env registry of
scripted models) and times ``pytest --collect-only -q`` as a whole process, median of
``--repeats``, against a baseline process that collects a single plain test function.

    python benchmarks/collection_scale.py [--models 176] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import timed_pytest  # noqa: E402

from pytest_llmeval.scenarios.mmlu import SUBJECTS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=176)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "prod_env").mkdir()
        deployments = ["model_deployments:"]
        for n in range(args.models):
            deployments += [f"  - name: scripted/m{n}", f"    model_name: scripted/m{n}",
                            "    client_spec: {class_name: scripted_model:generate}"]
        (project / "prod_env" / "model_deployments.yaml").write_text("\n".join(deployments) + "\n")
        (project / "scripted_model.py").write_text("def generate(requests):\n    return ['C' for _ in requests]\n")
        (project / "eval_all.yaml").write_text("entries:\n" + "".join(f"  - mmlu:subject={s}\n" for s in SUBJECTS))
        (project / "test_one.py").write_text("def test_one():\n    pass\n")
        models = ",".join(f"scripted/m{n}" for n in range(args.models))
        collect = ["--collect-only", "-q", "-p", "no:cacheprovider", "--llmeval-models", models, "eval_all.yaml"]
        baseline = ["--collect-only", "-q", "-p", "no:cacheprovider", "test_one.py"]
        times, base_times = [], []
        for _ in range(args.repeats):
            elapsed, stdout = timed_pytest(collect, project)
            times.append(elapsed)
            base_times.append(timed_pytest(baseline, project)[0])
        items = sum(1 for line in stdout.splitlines() if "::" in line)
    median, base = statistics.median(times), statistics.median(base_times)
    print(f"collected {items} items ({len(SUBJECTS)} subjects x {args.models} models), medians of {args.repeats}")
    print(f"{'process':34s} {'seconds':>8s}")
    print(f"{'pytest --collect-only, 1 test':34s} {base:8.2f}")
    print(f"{'pytest --collect-only, all items':34s} {median:8.2f}")
    print(f"collection alone: {median - base:.2f} s ({(median - base) / items * 1e6:.0f} us per item)")


if __name__ == "__main__":
    main()
