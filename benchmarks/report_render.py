"""Writing ``llmeval_report.html`` for a large session: 57 MMLU-sized runs, 14,042 instances in all.

The records are synthetic but shaped as a real MMLU session leaves them: a question with its
four options, a 5-shot prompt of a few thousand characters, the references, a one-letter
answer, and a comparison with a baseline where a fifth of the answers changed (so the static
lists of changed answers are full as well). Times what the session's last step does: the page
streamed into a file. Prints the median seconds over ``--repeats`` and the seconds per
thousand instances, the process's CPU seconds (steadier on a shared machine), and the page's size.

    python benchmarks/report_render.py [--repeats 5] [--instances 14042]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_llmeval.report.baseline import entry_from_record  # noqa: E402
from pytest_llmeval.report.compare import compare_run  # noqa: E402
from pytest_llmeval.report.html import report_parts  # noqa: E402
from pytest_llmeval.report.run_records import InstanceRecord, RunRecord  # noqa: E402
from pytest_llmeval.report.summary import build_summary  # noqa: E402
from pytest_llmeval.scenarios.mmlu import SUBJECTS  # noqa: E402

MODEL = "local/smollm2-135m-instruct"
LETTERS = "ABCD"


def _question(rng: random.Random, subject: str, n: int) -> tuple[str, list[str], int]:
    words = [rng.choice(("cell", "energy", "law", "market", "theorem", "<b>", "patient", "\u00e9t\u00e9", "&"))
             for _ in range(40)]
    options = [" ".join(rng.choice(words) for _ in range(6)) for _ in LETTERS]
    return f"{subject} question {n}: {' '.join(words)}?", options, rng.randrange(4)


def _record(rng: random.Random, subject: str, count: int, shift: float) -> RunRecord:
    """One subject's run; ``shift`` is the share of answers that differ from the baseline's."""
    shots = "\n\n".join(f"Question: {' '.join(rng.choice(SUBJECTS) for _ in range(60))}\nAnswer: C" for _ in range(5))
    instances = []
    for n in range(count):
        text, options, answer = _question(rng, subject, n)
        given = answer if rng.random() < 0.4 else rng.randrange(4)
        if rng.random() < shift:
            given = (given + 1) % 4
        body = text + "".join(f"\n{letter}. {option}" for letter, option in zip(LETTERS, options))
        instances.append(InstanceRecord(
            key=f"test/id{n}/0", id=f"id{n}", split="test", input=body, prompt=f"{shots}\n\n{body}\nAnswer:",
            references=[{"text": option, "correct": k == answer} for k, option in enumerate(options)],
            output=f" {LETTERS[given]}", prediction=options[given],
            metrics={"exact_match": float(given == answer), "quasi_exact_match": float(given == answer)},
            correct=given == answer))
    value = sum(1 for i in instances if i.correct) / count
    name = f"mmlu:subject={subject},method=multiple_choice_joint[{MODEL}]"
    return RunRecord(
        nodeid=f"evals/eval_mmlu.yaml::{name}", name=name, key=name, scenario_key=name, model=MODEL,
        scenario="mmlu", run=f"mmlu:subject={subject},model={MODEL.replace('/', '_')}", main_metric="exact_match",
        split="test", value=value, count=count, ci95=[max(0.0, value - 0.05), min(1.0, value + 0.05)],
        stats=[{"name": {"name": metric, "split": "test"}, "count": count, "sum": value * count, "mean": value}
               for metric in ("exact_match", "quasi_exact_match", "num_prompt_tokens", "inference_runtime")],
        requests=count, cache_hits=count, seconds=count * 0.01, output_dir=f"benchmark_output/runs/default/{subject}",
        instances=instances)


def build(total: int) -> tuple[dict[str, object], list[RunRecord]]:
    rng = random.Random(0)
    per_subject = [total // len(SUBJECTS) + (n < total % len(SUBJECTS)) for n in range(len(SUBJECTS))]
    records = []
    for subject, count in zip(SUBJECTS, per_subject):
        baseline = _record(random.Random(subject), subject, count, 0.0)
        record = _record(random.Random(subject), subject, count, 0.2)
        record.comparison = compare_run(record, entry_from_record(baseline), "0001_main", {}, 0.05).to_json()
        records.append(record)
    rng.shuffle(records)
    return build_summary(records, "default", baseline="0001_main"), records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--instances", type=int, default=14_042)  # MMLU's test split, all 57 subjects
    args = parser.parse_args()
    summary, records = build(args.instances)
    times, cpu = [], []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "llmeval_report.html"
        for _ in range(args.repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            with path.open("w", encoding="utf-8") as out:
                out.writelines(report_parts(summary, records, []))
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        size = path.stat().st_size
    seconds = statistics.median(times)
    print(f"llmeval_report.html for {len(records)} runs, {args.instances} instances: {size / 1e6:.1f} MB")
    print(f"median of {args.repeats}: {seconds:.3f} s, {seconds / args.instances * 1000:.3f} s per 1000 instances "
          f"(min {min(times):.3f} s; CPU time: median {statistics.median(cpu):.3f} s, min {min(cpu):.3f} s)")


if __name__ == "__main__":
    main()
