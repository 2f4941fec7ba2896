"""report.html and summary.json from records: escaping, embedded data, leaderboard and charts."""

from __future__ import annotations

import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_llmeval.games.episode_runner import Episode
from pytest_llmeval.report.baseline import entry_from_record
from pytest_llmeval.report.compare import compare_run
from pytest_llmeval.report.episodes import episode_view, shown_episodes
from pytest_llmeval.report.html import render_report, script_json
from pytest_llmeval.report.run_records import InstanceRecord, RunRecord
from pytest_llmeval.report.summary import build_summary, write_json
from tests.test_report_compare import make_record

EVIL = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'


class Tags(HTMLParser):
    """Every start tag and the text inside each script element."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def evil_record() -> RunRecord:
    record = make_record([1, 0], ["A", EVIL], name=f"quiz:x={EVIL}[m]")
    record.model = "m"
    record.instances[1].prediction = EVIL
    record.instances[1].input = EVIL
    record.failures = [f"gate failed: {EVIL}"]
    record.ci95 = [0.1, 0.9]
    return record


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def test_untrusted_text_never_becomes_markup() -> None:
    record = evil_record()
    baseline = make_record([1, 1], ["A", "B"], name=record.name)
    record.comparison = compare_run(record, entry_from_record(baseline), "0001_main", {}, 0.05).to_json()
    page = render_report(build_summary([record], "default"), [record], [])
    tags = parse(page)
    assert [t for t, _ in tags.tags].count("script") == 2  # the data and the page's own script
    assert not any(tag == "img" for tag, _ in tags.tags)
    assert not any(any(k.startswith("on") for k in attrs) for _, attrs in tags.tags)
    assert "&lt;script&gt;window.__pwned" in page  # shown as text in the static parts
    data = json.loads(tags.scripts[0])
    assert data["runs"][0]["instances"][1]["prediction"] == EVIL  # intact, for textContent
    assert "</script" not in tags.scripts[0].lower()


def test_script_json_is_inert_and_strict() -> None:
    text = script_json({"a": "</script><!--", "b": math.nan, "c": "\u2028"})
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!--", "b": None, "c": "\u2028"}


def test_leaderboard_has_one_cell_per_model_and_run_with_interval() -> None:
    a = make_record([1, 0, 1, 1], name="quiz:x=1[m1]")
    a.model = "m1"
    b = make_record([0, 0, 1, 0], name="quiz:x=1[m2]")
    b.model = "m2"
    page = render_report(build_summary([a, b], "s"), [a, b], [])
    tags = parse(page)
    cells = [attrs for tag, attrs in tags.tags if attrs.get("data-testid") == "leaderboard-cell"]
    assert len(cells) == 2
    assert ">0.7500</a>" in page and ">0.2500</a>" in page
    assert page.count("<svg") == 1 and "exact_match (higher is better" in page
    assert 'http-equiv="Content-Security-Policy"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_summary_is_strict_json_and_sorted(tmp_path: Path) -> None:
    a = make_record([1, 0], name="quiz:x=2[m]")
    b = make_record([1, 1], name="quiz:x=1[m]")
    b.value = math.nan
    b.seconds = 2.5
    a.seconds = 1.25
    summary = build_summary([a, b], "nightly", baseline="0001_main")
    write_json(tmp_path / "summary.json", summary)
    data = json.loads((tmp_path / "summary.json").read_text())  # would fail on NaN
    assert [r["label"] for r in data["runs"]] == ["quiz:x=1", "quiz:x=2"]
    assert data["runs"][0]["value"] is None
    assert data["totals"] == {"runs": 2, "passed": 2, "failed": 0, "errors": 0, "seconds": 3.75}
    assert data["suite"] == "nightly" and data["baseline"] == "0001_main"
    assert "instances" in data["runs"][0] and data["runs"][0]["instances"] == 2


def test_game_episodes_are_shown_as_their_records_hold_them(tmp_path: Path) -> None:
    directory = tmp_path / "results" / "m" / "taboo" / "0_high_en" / "instance_00000"
    interactions = {
        "players": {"GM": "Game master for taboo", "Player 1": "describer", "Player 2": "guesser"},
        "turns": [[
            {"from": "GM", "to": "Player 1", "timestamp": "t", "action": {"type": "send message", "content": "Go"}},
            {"from": "Player 1", "to": "GM", "timestamp": "t", "action": {"type": "get message", "content": EVIL}},
            {"from": "GM", "to": "GM", "timestamp": "t", "action": {"type": "parse", "content": {"ok": True}}},
            {"from": "GM", "to": "GM", "timestamp": "t", "action": {"type": "info", "content": ("a", Path("b"))}},
        ]],
    }
    scores = {"turn scores": {}, "episode scores": {"Main Score": 100, "Aborted": 0, "Played": math.nan}}
    episode = Episode("taboo", "0_high_en", 0, "m", directory, {}, interactions, [], scores)
    found = episode_view(episode)
    assert (found["path"], found["players"], found["game"], found["experiment"], found["episode"]) == (
        str(directory), "m", "taboo", "0_high_en", "instance_00000")
    assert found["roles"] == interactions["players"]
    assert found["scores"]["Main Score"] == 100 and found["scores"]["Played"] is None  # the file holds null
    assert found["turns"][0][1]["content"] == EVIL
    assert found["turns"][0][2]["content"] == '{"ok": true}'
    assert found["turns"][0][3]["content"] == '["a", "b"]'  # as the JSON record holds it
    later = dict(found, path=str(directory.parent / "instance_00010"))
    earlier = dict(found, path=str(directory.parent / "instance_00009"))
    assert [e["path"] for e in shown_episodes([later, earlier, found])] == [  # folders in name order
        str(directory), str(directory.parent / "instance_00009"), str(directory.parent / "instance_00010")]
    assert shown_episodes([later, found, earlier], limit=1) == [found]
    record = RunRecord(nodeid="g::taboo[m]", name="taboo:0_high_en[m]", key="k", scenario_key="k", model="m",
                       kind="game", scenario="taboo")
    page = render_report(build_summary([record], "s"), [record], [found])
    assert 'id="episodes"' in page and "Game episodes" in page
    assert not any(tag == "img" for tag, _ in parse(page).tags)


@pytest.mark.parametrize("value", [None, 0.0])
def test_runs_without_values_render(value: float | None) -> None:
    record = RunRecord(nodeid="n", name="x[m]", key="x[m]", scenario_key="x[m]", model="m", value=value,
                       outcome="error", failures=["ClientError: boom"],
                       instances=[InstanceRecord(key="k", id="i", split=None)])
    page = render_report(build_summary([record], "s"), [record], [])
    assert "ClientError: boom" in page and "1 errors" in page


PACKAGE = Path(__file__).resolve().parents[1] / "pytest_llmeval"
TEMPLATE_FILES = sorted(p for p in PACKAGE.glob("*/templates/*") if p.is_file())


def test_page_inlines_its_stylesheet_and_script_exactly_as_written() -> None:
    """One offline file: the CSS and the script are in the page, and not read as template syntax."""
    record = make_record([1, 0], name="quiz:x=1[m]")
    page = render_report(build_summary([record], "s"), [record], [])
    for name in ("report.css", "report.js"):
        assert (PACKAGE / "report" / "templates" / name).read_text(encoding="utf-8") in page
    tags = parse(page)
    assert not any(tag == "link" or "src" in attrs for tag, attrs in tags.tags)
    assert len(tags.scripts) == 2 and "function renderRun(panel)" in tags.scripts[1]


def test_templates_ship_in_the_wheel() -> None:
    """Every template file matches a package-data pattern, so a non-editable install has it."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["pytest_llmeval"]
    assert {p.name for p in TEMPLATE_FILES} >= {"report.html.j2", "report.css", "report.js", "transcript.html.j2"}
    for path in TEMPLATE_FILES:
        assert any(path.relative_to(PACKAGE).match(pattern) for pattern in patterns), path


def test_no_markup_is_written_from_python_strings() -> None:
    """Pages come from templates only: no module builds HTML elements in its strings."""
    element = re.compile(r"<(!DOCTYPE|html|head|body|div|span|table|thead|tbody|tr|td|th|ul|ol|li|pre|code|p|a|h\d|"
                         r"details|summary|script|style|svg|rect|path|text|figure|meta|dl|dt|dd)[\s>/]", re.I)
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}" for path in sorted(PACKAGE.rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if element.search(line)]
    assert found == []
