"""Comparing a run folder of ours with one ``helm-run`` wrote, and the data both read.

``helm-run`` is the reference: the same instance ids, in the same order, and every stat it
writes (``stats.json`` and ``per_instance_stats.json``) equal within 1e-6, runtimes aside.
The data mirror holds only GSM8K's test file and BoolQ's dev file, while HELM's scenarios
also read train files for their in-context examples; :func:`build_mirror` makes both from
the evaluated file by one fixed rule (its first :data:`HELDOUT_ROWS` rows become the train
file, the rest the evaluated file), and :func:`place_for_helm` lays the same files out where
HELM's scenarios look, so both tools read byte-identical data.

Run as a script, it compares two run folders and exits 1 on any difference::

    python tests/helm_parity.py HELM_RUN_FOLDER OUR_RUN_FOLDER
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The rows of the evaluated file that become the train file (as examples_from=heldout holds out).
HELDOUT_ROWS = 50
TOLERANCE = 1e-6
STAT_FIELDS = ("count", "sum", "sum_squared", "min", "max", "mean", "variance", "stddev")
# Wall-clock measurements differ from run to run; every other stat must agree.
RUNTIME_STATS = frozenset({"inference_runtime", "inference_denoised_runtime", "inference_idealized_runtime",
                           "batch_size"})
EMPTY_CONTRAST_SETS = '{"data": [{}]}\n'
MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the bundled weights' name in HELM's registries


# --- the data both tools read ---------------------------------------------------------------

def _split_rows(source: Path, train: Path, evaluated: Path) -> None:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    train.parent.mkdir(parents=True, exist_ok=True)
    train.write_text("".join(lines[:HELDOUT_ROWS]), encoding="utf-8")
    evaluated.write_text("".join(lines[HELDOUT_ROWS:]), encoding="utf-8")


# Small files in each source's own format, for scenarios the shared mirror has no copy of
# (``<scenario>/...`` in the mirror's layout); helm-run was given the same files.
SOURCES = Path(__file__).parent / "data" / "helm_sources"


def build_mirror(shared_data: Path, target: Path) -> Path:
    """A data mirror in our layout: MMLU as it is, GSM8K and BoolQ split into train + evaluated,
    and the small source files of :data:`SOURCES`."""
    if SOURCES.is_dir():
        shutil.copytree(SOURCES, target, dirs_exist_ok=True)
    shutil.copytree(shared_data / "mmlu", target / "mmlu", dirs_exist_ok=True)
    _split_rows(shared_data / "gsm8k" / "test.jsonl", target / "gsm8k" / "train.jsonl",
                target / "gsm8k" / "test.jsonl")
    _split_rows(shared_data / "boolq" / "dev.jsonl", target / "boolq" / "train.jsonl",
                target / "boolq" / "dev.jsonl")
    return target


def place_for_helm(mirror: Path, benchmark_output: Path) -> None:
    """The mirror's files where crfm-helm's scenarios read them, so nothing is downloaded.

    BoolQ also reads the contrast sets (used only by ``only_contrast`` runs and contrast
    metrics); an empty set leaves the instances unchanged.
    """
    scenarios = benchmark_output / "scenarios"
    for split in ("dev", "val", "test"):
        shutil.copytree(mirror / "mmlu" / split, scenarios / "mmlu" / "data" / split, dirs_exist_ok=True)
    (scenarios / "gsm").mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        shutil.copyfile(mirror / "gsm8k" / f"{split}.jsonl", scenarios / "gsm" / f"gsm_data_{split}")
    boolq = scenarios / "boolq" / "data"
    boolq.mkdir(parents=True, exist_ok=True)
    for name in ("train", "dev"):
        shutil.copyfile(mirror / "boolq" / f"{name}.jsonl", boolq / name)
    (boolq / "boolq_perturbed.jsonl").write_text(EMPTY_CONTRAST_SETS, encoding="utf-8")


def prod_env(folder: Path) -> Path:
    """helm-run's registry for the bundled weights (the safetensors copy the plugin converts once)."""
    from pytest_llmeval.clients.hf_loading import converted_copy, resolve_source
    from pytest_llmeval.registry import Registry

    args = Registry.load().deployment("local/smollm2-135m-instruct").client_spec.args
    model = converted_copy(resolve_source(args["pretrained_model_name_or_path"], args["gguf_file"]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_deployments.yaml").write_text(
        f"model_deployments:\n  - name: local/smollm2-135m-instruct\n    model_name: {MODEL}\n"
        f"    tokenizer_name: {MODEL}\n    max_sequence_length: 8192\n    client_spec:\n"
        f"      class_name: helm.clients.huggingface_client.HuggingFaceClient\n"
        f"      args:\n        pretrained_model_name_or_path: {model}\n        apply_chat_template: false\n")
    (folder / "tokenizer_configs.yaml").write_text(
        f"tokenizer_configs:\n  - name: {MODEL}\n    tokenizer_spec:\n"
        f"      class_name: helm.tokenizers.huggingface_tokenizer.HuggingFaceTokenizer\n"
        f"      args:\n        pretrained_model_name_or_path: {model}\n"
        f"    end_of_text_token: \"<|im_end|>\"\n    prefix_token: \"<|im_start|>\"\n")
    (folder / "model_metadata.yaml").write_text(
        f"models:\n  - name: {MODEL}\n    display_name: SmolLM2 (135M)\n    description: bundled\n"
        f"    creator_organization_name: HuggingFace\n    access: open\n    release_date: 2024-11-01\n"
        f"    tags: [TEXT_MODEL_TAG, FULL_FUNCTIONALITY_TEXT_MODEL_TAG, LOCAL_MODEL_TAG]\n")
    return folder


def helm_run_command(helm_run: str, entry: str, suite: str, max_eval_instances: int) -> list[str]:
    """``helm-run`` on one run entry with the bundled weights, HELM's cache off, one thread."""
    model = f"{',' if ':' in entry else ':'}model={MODEL}"  # `gsm` takes its arguments after a colon
    return [helm_run, "--run-entries", entry + model, "--suite", suite, "--max-eval-instances",
            str(max_eval_instances), "--disable-cache", "-n", "1"]


# --- one run's files ------------------------------------------------------------------------

@dataclass
class RunFiles:
    """What is compared of one run: its evaluated ids in order, its stats, per-instance stats."""

    name: str
    instance_ids: list[str]
    stats: list[dict[str, Any]]
    per_instance: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    # Each request's prompt, in the order of the request states: (instance id, trial, prompt).
    prompts: list[tuple[str, int, str]] | None = None

    @classmethod
    def load(cls, folder: Path, name: str | None = None) -> RunFiles:
        """A run folder's files; ``name`` is the run's name when the folder is not named after it."""
        stats = json.loads((folder / "stats.json").read_text(encoding="utf-8"))
        per_instance: dict[tuple[str, int], list[dict[str, Any]]] = {}
        # HELM writes one entry per (metric, instance, trial); the stats of one instance are merged.
        for entry in json.loads((folder / "per_instance_stats.json").read_text(encoding="utf-8")):
            key = (str(entry["instance_id"]), int(entry.get("train_trial_index", 0)))
            per_instance.setdefault(key, []).extend(entry["stats"])
        return cls(name or folder.name, evaluated_ids(folder), stats, per_instance, request_prompts(folder))


def request_prompts(folder: Path) -> list[tuple[str, int, str]] | None:
    """The prompts sent: ``prompts.json`` if present, else ``scenario_state.json``'s; None when
    the folder has neither (the older fixtures)."""
    listed = folder / "prompts.json"
    if listed.is_file():
        rows = json.loads(listed.read_text(encoding="utf-8"))
    elif (folder / "scenario_state.json").is_file():
        state = json.loads((folder / "scenario_state.json").read_text(encoding="utf-8"))
        rows = [[str(rs["instance"].get("id")), int(rs.get("train_trial_index", 0)), rs["request"]["prompt"]]
                for rs in state["request_states"]]
    else:
        return None
    return [(str(i), int(t), str(p)) for i, t, p in rows]


def evaluated_ids(folder: Path) -> list[str]:
    """The ids in the order they were evaluated: ``instance_ids.json`` if present, else the
    first train trial's request states in ``scenario_state.json``."""
    listed = folder / "instance_ids.json"
    if listed.is_file():
        return [str(i) for i in json.loads(listed.read_text(encoding="utf-8"))]
    state = json.loads((folder / "scenario_state.json").read_text(encoding="utf-8"))
    ids: list[str] = []
    for request_state in state["request_states"]:
        if request_state.get("train_trial_index", 0) != 0:
            continue
        instance_id = str(request_state["instance"].get("id"))
        if instance_id not in ids:
            ids.append(instance_id)
    return ids


def save_reference(helm_run: Path, target: Path) -> None:
    """Keep what the comparison needs of a helm-run run folder (not its large scenario_state.json)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("run_spec.json", "stats.json", "per_instance_stats.json"):
        shutil.copyfile(helm_run / name, target / name)
    (target / "instance_ids.json").write_text(json.dumps(evaluated_ids(helm_run)) + "\n", encoding="utf-8")
    prompts = request_prompts(helm_run) or []
    (target / "prompts.json").write_text(json.dumps([list(p) for p in prompts], indent=0, ensure_ascii=False)
                                         + "\n", encoding="utf-8")


# --- comparing ------------------------------------------------------------------------------

def stat_key(stat: Mapping[str, Any]) -> str:
    """A stat's full name (metric, split, sub-split, perturbation, ...) as canonical JSON."""
    return json.dumps(stat["name"], sort_keys=True)


def stat_label(stat: Mapping[str, Any]) -> str:
    """``exact_match[split=test, perturbation=robustness/worst]`` for messages."""
    name = dict(stat["name"])
    parts = [f"{k}={name[k]}" for k in sorted(name) if k not in ("name", "perturbation")]
    perturbation = name.get("perturbation")
    if perturbation:
        parts.append(f"perturbation={perturbation.get('name')}/{perturbation.get('computed_on')}")
    return f"{name['name']}[{', '.join(parts)}]"


def is_runtime(stat: Mapping[str, Any]) -> bool:
    return str(stat["name"]["name"]) in RUNTIME_STATS


def _close(a: Any, b: Any, rel_tolerance: float = 0.0) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=max(1e-9, rel_tolerance), abs_tol=TOLERANCE)
    return bool(a == b)


def _by_key(stats: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {stat_key(s): s for s in stats if not is_runtime(s)}


def compare_stats(helm: Iterable[Mapping[str, Any]], ours: Iterable[Mapping[str, Any]], where: str,
                  rel_tolerance: float = 0.0) -> list[str]:
    """One line per stat that is missing, extra, or differs in a field, HELM's value first
    (``rel_tolerance``: a relative difference also allowed)."""
    theirs, mine = _by_key(helm), _by_key(ours)
    problems: list[str] = []
    for key, stat in theirs.items():
        if key not in mine:
            problems.append(f"{where}: {stat_label(stat)} missing (HELM: mean={stat.get('mean')}, "
                            f"count={stat.get('count')})")
            continue
        other = mine[key]
        for name in STAT_FIELDS:
            if name not in stat and name not in other:
                continue
            if name not in other or name not in stat or not _close(stat[name], other[name], rel_tolerance):
                problems.append(f"{where}: {stat_label(stat)} {name}: HELM {stat.get(name, '<absent>')}, "
                                f"ours {other.get(name, '<absent>')}")
    for key, stat in mine.items():
        if key not in theirs:
            problems.append(f"{where}: {stat_label(stat)} extra (ours: mean={stat.get('mean')})")
    return problems


def compare_prompts(helm: list[tuple[str, int, str]] | None, ours: list[tuple[str, int, str]] | None) -> list[str]:
    """Every request's prompt, byte for byte, matched by (instance id, trial, position among that
    instance's requests); nothing to compare when the reference has no prompts."""
    if helm is None:
        return []
    if ours is None:
        return ["prompts: our run folder has no scenario_state.json"]

    def keyed(rows: list[tuple[str, int, str]]) -> dict[tuple[str, int, int], str]:
        seen: dict[tuple[str, int], int] = {}
        out: dict[tuple[str, int, int], str] = {}
        for instance, trial, prompt in rows:
            n = seen.get((instance, trial), 0)
            seen[(instance, trial)] = n + 1
            out[(instance, trial, n)] = prompt
        return out

    theirs, mine = keyed(helm), keyed(ours)
    problems: list[str] = []
    for key, prompt in theirs.items():
        where = f"prompt of {key[0]} (trial {key[1]}, request {key[2]})"
        if key not in mine:
            problems.append(f"{where}: missing")
        elif mine[key] != prompt:
            at = next((n for n, (a, b) in enumerate(zip(prompt, mine[key])) if a != b),
                      min(len(prompt), len(mine[key])))
            problems.append(f"{where}: differs at character {at}: HELM {prompt[max(0, at - 30):at + 40]!r}, "
                            f"ours {mine[key][max(0, at - 30):at + 40]!r}")
    problems += [f"prompt of {k[0]} (trial {k[1]}, request {k[2]}): extra" for k in mine if k not in theirs]
    return problems


def compare_runs(helm: RunFiles, ours: RunFiles, rel_tolerance: float = 0.0) -> list[str]:
    """Every difference between two runs: run folder name, ids, stats.json, per-instance stats
    (numbers within 1e-6, or within ``rel_tolerance`` relative where that is larger)."""
    problems: list[str] = []
    if helm.name != ours.name:
        problems.append(f"run folder name: HELM {helm.name!r}, ours {ours.name!r}")
    if helm.instance_ids != ours.instance_ids:
        problems.append(f"evaluated instance ids: HELM {helm.instance_ids}, ours {ours.instance_ids}")
    problems += compare_prompts(helm.prompts, ours.prompts)
    problems += compare_stats(helm.stats, ours.stats, "stats.json", rel_tolerance)
    for key, stats in helm.per_instance.items():
        where = f"per_instance_stats.json {key[0]} (trial {key[1]})"
        if key not in ours.per_instance:
            problems.append(f"{where}: missing")
            continue
        problems += compare_stats(stats, ours.per_instance[key], where, rel_tolerance)
    for key in ours.per_instance:
        if key not in helm.per_instance:
            problems.append(f"per_instance_stats.json {key[0]} (trial {key[1]}): extra")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: helm_parity.py HELM_RUN_FOLDER OUR_RUN_FOLDER", file=sys.stderr)
        return 2
    problems = compare_runs(RunFiles.load(Path(argv[0])), RunFiles.load(Path(argv[1])))
    for line in problems:
        print(line)
    print(f"{len(problems)} difference(s)" if problems else "no differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
