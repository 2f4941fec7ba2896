"""All 108 entries of HELM Lite's own conf file, unchanged, on a scripted model and offline.

Each entry either runs or fails only because its data is not in the mirror: none may be an
unknown scenario, an unsupported argument or any other error. The mirror is the shared one
(MMLU, GSM8K, ...) plus the small source files the parity tests use, so every HELM Lite scenario
has some of its data and runs for real where its subject, subset or pair is there.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

import pytest

from tests.helm_parity import build_mirror

REPO = Path(__file__).resolve().parents[1]
LITE = REPO.parent / "shared" / "peers" / "helm" / "presentation" / "run_entries_lite_20240424.conf"
SHARED_DATA = REPO.parent / "shared" / "data"

pytestmark = pytest.mark.skipif(not LITE.is_file() or not (SHARED_DATA / "mmlu").is_dir(),
                                reason="no HELM peer files or shared data mirror beside the repository")

SCRIPTED_MODEL = """\
def generate(requests):
    # A fixed answer that is a valid joint multiple-choice letter and a short generation.
    return [" A" for _ in requests]
"""
DEPLOYMENT = """\
model_deployments:
  - name: scripted/lite
    model_name: scripted/lite
    tokenizer_name: HuggingFaceTB/SmolLM2-135M-Instruct
    max_sequence_length: 8192
    client_spec:
      class_name: scripted_lite:generate
"""
# What a run whose data is absent says (a DataNotFoundError).
DATA_ABSENT = "not found: expected"


def outcomes(junit: Path) -> dict[str, str]:
    """Each item's name -> "passed", or its failure's one-line message."""
    result: dict[str, str] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        name = str(case.get("name"))
        result[name] = "passed" if problem is None else f"{problem.get('message', '')} {problem.text or ''}"
    return result


@pytest.mark.slow
def test_every_helm_lite_entry_runs_or_lacks_only_its_data(pytester: pytest.Pytester, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(LITE, pytester.path / LITE.name)
    pytester.makepyfile(scripted_lite=SCRIPTED_MODEL)
    (pytester.path / "prod_env").mkdir()
    (pytester.path / "prod_env" / "model_deployments.yaml").write_text(DEPLOYMENT, encoding="utf-8")
    mirror = build_mirror(SHARED_DATA, tmp_path / "data")
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    junit = tmp_path / "junit.xml"
    pytester.runpytest_subprocess(
        LITE.name, "-p", "no:cacheprovider", "-q", f"--junitxml={junit}",
        "--llmeval-local-path", "prod_env", "--llmeval-models", "scripted/lite",
        "--llmeval-data-dir", str(mirror), "--llmeval-max-eval-instances", "2",
        "--llmeval-output-path", str(tmp_path / "out"), "--llmeval-disable-cache", timeout=1200)
    results = outcomes(junit)
    assert len(results) == 108
    other = {name: message for name, message in results.items()
             if message != "passed" and DATA_ABSENT not in message}
    assert not other, "\n".join(f"{name}: {message}" for name, message in other.items())
    ran = Counter(name.split(":")[0].split("[")[0] for name, message in results.items() if message == "passed")
    # Every HELM Lite scenario runs on the data the mirror has for it.
    assert set(ran) == {"narrative_qa", "natural_qa", "commonsense", "mmlu", "math", "gsm", "legalbench",
                        "med_qa", "wmt_14"}, ran
