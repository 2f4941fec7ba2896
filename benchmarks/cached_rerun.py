"""A fully cached rerun of all 57 MMLU subjects (14,042 test questions, 5-shot) on the bundled model.

Running the bundled model on every question takes about half an hour of this CPU, so the
first process fills the request cache through a small plugin that answers " C" in place of
the model (the cache keys, prompts and token counts are the real ones: the plugin replaces
only the model's forward passes). Then the same command runs again ``--repeats`` times with
nothing replaced: that is the timed path a user gets on a rerun. Prints the whole process's
seconds (median), seconds per thousand requests, whether torch was imported, and a baseline
process that runs one plain test.

    python benchmarks/cached_rerun.py [--repeats 3] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import environment, timed_pytest  # noqa: E402

from pytest_llmeval.registry import DEFAULT_MODEL  # noqa: E402
from pytest_llmeval.scenarios.mmlu import SUBJECTS  # noqa: E402

FILL_PLUGIN = '''
from pytest_llmeval.clients.huggingface import HuggingFaceClient
from pytest_llmeval.requests import GeneratedOutput, RequestResult, Token


def _answer_c(self, requests):
    answers = [RequestResult(success=True, completions=[
        GeneratedOutput(text=" C", logprob=-1.0, tokens=[Token(text=" C", logprob=-1.0)])]) for _ in requests]
    yield list(range(len(requests))), answers


HuggingFaceClient.generate_stream = _answer_c
'''

IMPORTS_PLUGIN = '''
import sys


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"torch imported: {'torch' in sys.modules}")
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    env = environment(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "fill_with_c.py").write_text(FILL_PLUGIN)
        (project / "report_imports.py").write_text(IMPORTS_PLUGIN)
        (project / "eval_all.yaml").write_text(
            "entries:\n" + "".join(f"  - \"mmlu:subject={s},eval_split=test\"\n" for s in SUBJECTS))
        (project / "test_one.py").write_text("def test_one():\n    pass\n")
        env["PYTHONPATH"] = str(project)
        command = ["eval_all.yaml", "-q", "-p", "no:cacheprovider", "--llmeval-models", DEFAULT_MODEL,
                   "--junitxml", str(project / "junit.xml")]
        fill, _ = timed_pytest([*command, "-p", "fill_with_c"], project, env)
        print(f"filling the cache: {fill:.1f} s", flush=True)
        times, base = [], []
        for repeat in range(args.repeats):
            elapsed, stdout = timed_pytest([*command, "-p", "report_imports"], project, env)
            times.append(elapsed)
            base.append(timed_pytest(["-q", "-p", "no:cacheprovider", "test_one.py"], project, env)[0])
            print(f"run {repeat + 1}: {elapsed:.2f} s", flush=True)
        torch_line = next((line for line in stdout.splitlines() if line.startswith("torch imported")), "?")
        cases = list(ET.parse(project / "junit.xml").getroot().iter("testcase"))
        props = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
        requests = sum(int(str(p["llmeval_requests"])) for p in props)
        cached = sum(int(str(p["llmeval_cache_hits"])) for p in props)
    median = statistics.median(times)
    print(f"\n{len(cases)} runs on {DEFAULT_MODEL}, {requests} requests ({cached} from the cache), "
          f"medians of {args.repeats}; {torch_line}")
    print(f"{'process':38s} {'seconds':>8s}")
    print(f"{'pytest, one plain test':38s} {statistics.median(base):8.2f}")
    print(f"{'pytest, all 57 subjects fully cached':38s} {median:8.2f}   (target 10)")
    print(f"per thousand requests: {median / requests * 1000:.3f} s for the whole process, "
          f"{(median - statistics.median(base)) / requests * 1000:.3f} s above the baseline")


if __name__ == "__main__":
    main()
