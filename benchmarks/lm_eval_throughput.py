"""One lm-eval task through pytest-llmeval and through ``lm_eval --model hf``: time and answers.

The same task and documents (hellaswag, its first N, lm_eval's ``--limit N``) on the bundled
SmolLM2 model, float32 on the CPU, each run a fresh process timed whole (imports and model
load included), alternating, several times:

  ours        pytest with pytest-llmeval, an ``lm_eval:task=NAME`` entry, the request cache off:
              lm-eval's ``simple_evaluate`` over our client (batched, shared prefixes)
  lm_eval     lm-eval's own command, ``--model hf``, at batch sizes 1 and 8, reading the data
              mirror (see lm_eval_runs.py); the better of the two is what ours is measured by

On a shared machine other processes take CPU from a timed run (and threaded torch slows
far more than its share): each run starts when the rest of the machine is quiet, its line
shows the cores other processes used meanwhile (``/proc/stat`` less our own processes), a
contended run is run again (``--retries``), and the ratio is given by medians and by the
fastest runs. It prints the median and range of each, documents per second, lm_eval's best over ours, and,
from the samples files, the largest log-likelihood difference of a (document, choice) and
whether acc/acc_norm agree per document and in aggregate.

    python benchmarks/lm_eval_throughput.py [--task hellaswag] [--limit 200] [--repeats 3]
        [--batch-sizes 1,8] [--max-other-cores 0.25] [--retries 2] [--data-dir DIR] [--out DIR]
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
    Run,
    bundled_weights,
    compare,
    default_data_dir,
    run_lm_eval,
    run_ours,
    spread,
    table,
)
from benchmarks.timing import wait_for_quiet  # noqa: E402


def timed_run(args: argparse.Namespace, way: str, folder: Path, mirror: Path, weights: Path, n: int) -> Run:
    """One run of ``way``, started when the machine is quiet and run again (up to
    ``--retries`` times) when other processes took CPU from it meanwhile."""
    for attempt in range(args.retries + 1):
        waited = wait_for_quiet(args.max_other_cores)
        target = folder if attempt == 0 else folder.with_name(f"{folder.name}_retry{attempt}")
        if way == "ours":
            run = run_ours([args.task], args.limit, target, mirror)
        else:
            run = run_lm_eval([args.task], args.limit, target, mirror, weights, int(way.split("=")[1]))
        contended = run.others is not None and run.others > args.max_other_cores
        others = "?" if run.others is None else f"{run.others:.2f}"
        print(f"  {way:12s} run {n + 1}: {run.seconds:6.1f} s  (other processes {others} cores"
              f"{f', waited {waited:.0f} s for quiet' if waited > 10 else ''})"
              f"{'  contended, again' if contended and attempt < args.retries else ''}", flush=True)
        if not contended:
            break
    return run


def measure(args: argparse.Namespace, work: Path) -> None:
    mirror = Path(args.data_dir).resolve()
    weights = bundled_weights()
    ways = ["ours", *(f"lm_eval bs={b}" for b in args.batch_sizes)]
    runs: dict[str, list[Run]] = {way: [] for way in ways}
    for n in range(args.repeats):
        for way in ways:
            runs[way].append(timed_run(args, way, work / f"{way.replace(' ', '_').replace('=', '')}_{n}", mirror,
                                       weights, n))

    stats = {way: spread([r.seconds for r in done]) for way, done in runs.items()}
    best = min(ways[1:], key=lambda way: stats[way][0])

    def contended(way: str) -> str:
        count = sum(r.others is not None and r.others > args.max_other_cores for r in runs[way])
        return str(count) if count else "-"

    rows = [[way, f"{med:.1f}", f"{low:.1f}-{high:.1f}", f"{args.limit / med:.2f}", contended(way)]
            for way, (med, low, high) in stats.items()]
    print(f"\n{args.task}, {args.limit} documents, {BUNDLED} (float32, CPU), whole process, "
          f"median of {args.repeats}:")
    print(table(["way", "median s", "min-max s", "docs/s", "contended runs"], rows))
    fastest = min(ways[1:], key=lambda way: stats[way][1])
    print(f"{best} / ours: {stats[best][0] / stats['ours'][0]:.2f}x the time by medians; fastest runs, "
          f"{fastest} / ours: {stats[fastest][1] / stats['ours'][1]:.2f}x (above 1: ours is faster)")

    print("\nanswers, ours against each lm_eval run of the same repeat:")
    rows = []
    for way in ways[1:]:
        comparisons = [compare(args.task, mine, theirs) for mine, theirs in zip(runs["ours"], runs[way])]
        worst = max(comparisons, key=lambda c: c.max_ll_diff)
        metrics = worst.metric_names
        disagree = ", ".join(f"{m} {max(c.disagreements(m) for c in comparisons)}" for m in metrics)
        same_aggregate = all(not c.aggregates_differ for c in comparisons)
        where = f"doc {worst.where[0]} choice {worst.where[1]}" if worst.where else "-"
        problems = sum(len(c.problems) for c in comparisons)
        rows.append([way, str(worst.documents), f"{worst.max_ll_diff:.2e}", where,
                     disagree or "-", "yes" if same_aggregate else "no",
                     str(max(c.greedy_disagreements for c in comparisons)), str(problems)])
    print(table(["against", "docs", "max |d ll|", "at", "per-doc metric disagreements", "aggregate same",
                 "greedy disagree", "doc mismatches"], rows))
    for way in ways[1:]:
        for n, (mine, theirs) in enumerate(zip(runs["ours"], runs[way])):
            differing = compare(args.task, mine, theirs).aggregates_differ
            for name, (a, b) in differing.items():
                print(f"  run {n + 1}, {way}: {name}: ours {a}, lm_eval {b}")
    aggregate = runs["ours"][0].results().get(args.task, {})
    print("ours: " + ", ".join(f"{k} {v:.4f}" for k, v in aggregate.items()
                                if isinstance(v, float) and "stderr" not in k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="hellaswag")
    parser.add_argument("--limit", type=int, default=200, help="documents (lm_eval's --limit)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,8", type=lambda s: [int(b) for b in s.split(",")],
                        help="lm_eval's batch sizes, comma-separated")
    parser.add_argument("--max-other-cores", type=float, default=0.25,
                        help="a run during which other processes used more cores than this is contended")
    parser.add_argument("--retries", type=int, default=2, help="times a contended run is run again")
    parser.add_argument("--data-dir", default=str(default_data_dir()),
                        help="the data mirror (default: $LLMEVAL_DATA_DIR, else ../shared/data)")
    parser.add_argument("--out", help="keep both runs' files here (default: a temporary folder)")
    args = parser.parse_args()
    if not (Path(args.data_dir) / "hf").is_dir():
        raise SystemExit(f"needs the data mirror's hf/ folder under {args.data_dir} (--data-dir)")
    if args.out:
        measure(args, Path(args.out).resolve())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            measure(args, Path(tmp))


if __name__ == "__main__":
    main()
