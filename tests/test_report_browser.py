"""llmeval_report.html in a real headless Chromium (Debian's, driven by Playwright): numbers, panels, filters, escaping.

Skipped only when no Chromium is installed (``.ci/run`` installs it); Playwright never
downloads a browser here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.report_project import summary_of, write_models

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
EVIL_TEXT = "<script>window.__pwned = 1</script><b>bold</b>"

# Game records in clembench's layout, written during the session as a game item would write them.
GAME_TEST = '''
from pytest_llmeval import ScriptedModel


def test_taboo_episode(play_game):
    """One won taboo episode whose clue is markup: the report must show it as text."""
    describer = ScriptedModel(["CLUE: <script>window.__pwned = 3</script>"])
    play = play_game("taboo", [describer, ScriptedModel(["GUESS: food"])], experiment="high_en", episodes=[0])
    assert play.runs[0].episodes[0].scores["episode scores"]["Main Score"] == 100.0
'''


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A session of four runs on two scripted models (one answering markup), compared with a baseline.

    Built once for the module, in a subprocess (pytester is per test).
    """
    root = tmp_path_factory.mktemp("browser-report")
    write_models(root)
    (root / "test_game.py").write_text(GAME_TEST)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n")
    args = ["--llmeval-models", "scripted/oracle,scripted/evil", "--llmeval-max-eval-instances", "12"]
    saved = _pytest(root, *args, "--llmeval-save-baseline", "main")
    assert saved.returncode == 0, saved.stdout + saved.stderr
    write_models(root, wrong_percent=80)
    compared = _pytest(root, *args, "--llmeval-compare", "main", "-n", "2")
    assert "2 failed, 3 passed" in compared.stdout, compared.stdout + compared.stderr
    return root / "benchmark_output" / "runs" / "default" / "llmeval_report.html", summary_of(root)


def expect(locator: Any) -> Any:
    """Playwright's auto-waiting assertions (imported late: the module may be skipped)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _open(browser: Any, path: Path) -> tuple[Any, list[str]]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    page.on("request", lambda request: errors.append(f"request: {request.url}")
            if not request.url.startswith("file://") else None)
    page.goto(path.as_uri())
    return page, errors


def _main_stat(run: dict[str, Any]) -> dict[str, Any]:
    stats = json.loads((Path(run["output_dir"]) / "stats.json").read_text())
    return next(s for s in stats if s["name"] == {"name": "exact_match", "split": run["split"]})


def test_leaderboard_shows_the_numbers_in_stats_json(browser: Any, report: tuple[Path, dict[str, Any]]) -> None:
    path, summary = report
    page, errors = _open(browser, path)
    cells = page.locator("[data-testid=leaderboard-cell]")
    assert cells.count() == len(summary["runs"]) == 4
    shown = {}
    for n in range(cells.count()):
        cell = cells.nth(n)
        shown[int(cell.get_attribute("data-run"))] = (cell.locator(".value").inner_text(), cell.inner_text())
    for index, run in enumerate(summary["runs"]):  # the report numbers runs in the summary's order
        stat = _main_stat(run)
        value, text = shown[index]
        assert value == f"{stat['mean']:.4f}"
        assert f"n={stat['count']}" in text
        assert f"[{run['ci95'][0]:.3f}, {run['ci95'][1]:.3f}]" in text
    assert page.locator("svg.chart rect").count() == 4
    assert page.locator("#changes tr.regression").count() == 2
    assert errors == []


def test_a_run_panel_opens_lists_every_instance_and_filters(browser: Any,
                                                           report: tuple[Path, dict[str, Any]]) -> None:
    path, summary = report
    page, errors = _open(browser, path)
    index, run = next((n, r) for n, r in enumerate(summary["runs"]) if r["model"] == "scripted/oracle"
                      and r["label"] == "mmlu:subject=anatomy")
    per_instance = json.loads((Path(run["output_dir"]) / "per_instance_stats.json").read_text())
    wrong = sum(1 for entry in per_instance for s in entry["stats"] if s["name"]["name"] == "exact_match"
                and s["mean"] == 0.0)
    panel = page.locator(f"#run-{index}")
    assert not panel.evaluate("node => node.open")
    page.locator(f"[data-testid=leaderboard-cell][data-run='{index}'] a").click()
    assert panel.evaluate("node => node.open")
    rows = panel.locator("tr.instance")
    expect(rows).to_have_count(12)
    assert len(per_instance) == 12
    assert panel.locator(".shown").inner_text() == "showing 12 of 12"
    assert 0 < wrong < 12
    panel.locator(".only-wrong").check()
    assert panel.locator("tr.instance:visible").count() == wrong
    assert panel.locator(".shown").inner_text() == f"showing {wrong} of 12"
    assert panel.locator("tr.instance:visible .right").count() == 0
    panel.locator(".only-wrong").uncheck()
    first_id = per_instance[0]["instance_id"]
    panel.locator(".search").fill(first_id)
    assert panel.locator("tr.instance:visible").count() >= 1
    assert panel.locator("tr.instance:visible").first.inner_text().startswith(first_id)
    assert panel.locator(".comparison .r2w li").count() == run["comparison"]["right_to_wrong"]
    assert errors == []


def test_markup_in_predictions_and_transcripts_is_shown_as_text(browser: Any,
                                                               report: tuple[Path, dict[str, Any]]) -> None:
    path, summary = report
    page, errors = _open(browser, path)
    index = next(n for n, r in enumerate(summary["runs"]) if r["model"] == "scripted/evil")
    panel = page.locator(f"#run-{index}")
    panel.locator("summary").first.click()
    predictions = panel.locator("pre.prediction")
    expect(predictions).to_have_count(12)  # drawn on the (asynchronous) toggle event
    assert predictions.first.inner_text().strip() == EVIL_TEXT
    assert panel.locator("pre.prediction b").count() == 0
    episode = page.locator("#episodes details.episode").first
    episode.locator("summary").click()
    bubbles = episode.locator(".bubble")
    clue = bubbles.filter(has_text="CLUE: <script>window.__pwned = 3</script>")
    expect(clue).not_to_have_count(0)  # drawn on the toggle event
    assert "from-p1" in (clue.first.get_attribute("class") or "")
    assert "from-p2" in (bubbles.filter(has_text="GUESS: food").first.get_attribute("class") or "")
    assert "Main Score 100" in episode.locator("summary").inner_text()
    assert page.evaluate("() => window.__pwned === undefined")
    assert errors == []
