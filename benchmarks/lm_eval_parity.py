"""Do pytest-llmeval's lm-eval entries answer as ``lm_eval --model hf`` does? Several tasks, once.

Each task's first N documents (lm_eval's ``--limit N``) on the bundled SmolLM2 model, float32
on the CPU, in one pytest-llmeval process (one ``lm_eval:task=NAME`` entry per task, the
request cache off) and one ``lm_eval`` process (all tasks, reading the data mirror, see
lm_eval_runs.py). Per task it prints the documents compared, the largest log-likelihood
difference of a (document, choice), per-document metric disagreements, whether the aggregated
metrics of the two results files are identical, and is_greedy disagreements.

Exits 1 when a log-likelihood differs by more than ``--tolerance`` (1e-4), a metric differs
(per document or aggregated), or the two did not score the same documents and prompts.

    python benchmarks/lm_eval_parity.py [--tasks hellaswag,winogrande,piqa,copa,mmlu_anatomy]
        [--limit 100] [--batch-size 8] [--tolerance 1e-4] [--data-dir DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.lm_eval_runs import (  # noqa: E402
    BUNDLED,
    Comparison,
    Run,
    bundled_weights,
    compare,
    default_data_dir,
    run_lm_eval,
    run_ours,
    table,
)

TASKS = "hellaswag,winogrande,piqa,copa,mmlu_anatomy"


def busy(run: Run) -> str:
    """The cores other processes used during the run, when that slowed it (its time is then
    not a measurement; lm_eval_throughput.py measures time)."""
    return f" (other processes used {run.others:.2f} cores meanwhile)" if run.others and run.others > 0.25 else ""


def failed(c: Comparison, tolerance: float) -> bool:
    return (c.max_ll_diff > tolerance or bool(c.problems) or bool(c.aggregates_differ)
            or any(c.disagreements(m) for m in c.metric_names) or c.documents == 0)


def check(args: argparse.Namespace, work: Path) -> int:
    mirror = Path(args.data_dir).resolve()
    tasks = [t for t in args.tasks.split(",") if t]
    ours = run_ours(tasks, args.limit, work / "ours", mirror)
    print(f"ours: {ours.seconds:.1f} s{busy(ours)}, files in {ours.folder}", flush=True)
    theirs = run_lm_eval(tasks, args.limit, work / "lm_eval", mirror, bundled_weights(), args.batch_size)
    print(f"lm_eval --model hf (batch size {args.batch_size}): {theirs.seconds:.1f} s{busy(theirs)}, "
          f"files in {theirs.folder}", flush=True)

    comparisons = [compare(task, ours, theirs) for task in tasks]
    rows = []
    for c in comparisons:
        where = f"doc {c.where[0]} choice {c.where[1]}" if c.where else "-"
        metrics = ", ".join(f"{m} {c.disagreements(m)}" for m in c.metric_names) or "-"
        rows.append([c.task, str(c.documents), f"{c.max_ll_diff:.2e}", where, metrics,
                     "yes" if not c.aggregates_differ else "no", str(c.greedy_disagreements),
                     "FAIL" if failed(c, args.tolerance) else "ok"])
    print(f"\n{BUNDLED}, first {args.limit} documents per task, ours against lm_eval --model hf:")
    print(table(["task", "docs", "max |d ll|", "at", "per-doc metric disagreements", "aggregate same",
                 "greedy disagree", ""], rows))
    for c in comparisons:
        if c.values is not None and c.max_ll_diff > args.tolerance:
            print(f"  {c.task}: largest difference at doc {c.where[0]} choice {c.where[1]}: "
                  f"ours {c.values[0]!r}, lm_eval {c.values[1]!r}")
        for metric in c.metric_names:
            if c.disagreements(metric):
                print(f"  {c.task}: {metric} differs on docs {c.metric_disagreements[metric][:20]}")
        for name, (a, b) in c.aggregates_differ.items():
            print(f"  {c.task}: aggregated {name}: ours {a!r}, lm_eval {b!r}")
        for problem in c.problems[:10]:
            print(f"  {c.task}: {problem}")
    bad = [c.task for c in comparisons if failed(c, args.tolerance)]
    print(f"\n{'FAILED: ' + ', '.join(bad) if bad else 'all tasks agree'} "
          f"(log-likelihood tolerance {args.tolerance:g})")
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=TASKS, help="lm-eval task names, comma-separated")
    parser.add_argument("--limit", type=int, default=100, help="documents per task (lm_eval's --limit)")
    parser.add_argument("--batch-size", type=int, default=8, help="lm_eval's --batch_size")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed log-likelihood difference")
    parser.add_argument("--data-dir", default=str(default_data_dir()),
                        help="the data mirror (default: $LLMEVAL_DATA_DIR, else ../shared/data)")
    parser.add_argument("--out", help="keep both runs' files here (default: a temporary folder)")
    args = parser.parse_args()
    if not (Path(args.data_dir) / "hf").is_dir():
        raise SystemExit(f"needs the data mirror's hf/ folder under {args.data_dir} (--data-dir)")
    if args.out:
        code = check(args, Path(args.out).resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            code = check(args, Path(tmp))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
