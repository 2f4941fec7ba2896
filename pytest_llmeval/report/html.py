"""``report.html``: one self-contained page (no server, no network, no external files).

The leaderboard, charts and baseline changes are static HTML, every text escaped. The
instance lists and game transcripts are drawn by a small inline script from JSON embedded in
the page, only when their panel opens, so a page with thousands of instances stays quick; the
script writes model text with ``textContent`` only, never as markup, and a Content-Security-
Policy forbids loading anything from anywhere.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from pytest_llmeval.gates import lower_is_better
from pytest_llmeval.report.run_records import RunRecord
from pytest_llmeval.report.summary import finite, sort_records

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
SHOWN_CHANGES = 500  # per list and run; the rest are counted
DOT, ARROW, DASH, MORE = "\u00b7", "\u2192", "\u2014", "\u2026"
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


_strict_json = json.JSONEncoder(allow_nan=False).encode  # json.dumps(value, allow_nan=False), one encoder


def script_json(data: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>``, no HTML-significant characters.

    NaN and infinities become null; the walk that replaces them runs only when there is one.
    The JSON is ASCII (``\\uXXXX`` for anything else, U+2028 and U+2029 included), which keeps
    the replacements below fast on a report of many megabytes.
    """
    try:
        text = _strict_json(data)
    except ValueError:
        text = _strict_json(finite(data))
    for char, code in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, code)
    return text


# --- static parts --------------------------------------------------------------------------


def leaderboard(records: list[RunRecord]) -> str:
    models = sorted({r.model for r in records})
    labels: list[str] = []
    for record in records:
        if record.label not in labels:
            labels.append(record.label)
    index = {id(r): n for n, r in enumerate(records)}
    cells = {(r.model, r.label): r for r in records}
    head = "".join(
        f'<th scope="col"><span class="run-label">{_e(label)}</span><br><span class="metric">'
        f'{_e(next(r.main_metric for r in records if r.label == label))}</span></th>' for label in labels)
    rows = []
    for model in models:
        tds = []
        for label in labels:
            found = cells.get((model, label))
            if found is None:
                tds.append('<td class="empty">-</td>')
                continue
            status = found.outcome if found.outcome != "passed" else ""
            tds.append(
                f'<td class="cell {status}" data-run="{index[id(found)]}" data-testid="leaderboard-cell">'
                f'<a href="#run-{index[id(found)]}" class="value">{_num(found.value)}</a>'
                f'<div class="sub">n={found.count} <span class="ci">{_ci(found.ci95)}</span></div></td>')
        rows.append(f'<tr><th scope="row">{_e(model)}</th>{"".join(tds)}</tr>')
    return (f'<table class="leaderboard" id="leaderboard"><thead><tr><th>model</th>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def bar_charts(records: list[RunRecord]) -> str:
    """One horizontal bar chart per main metric: a bar per run and model, with its 95% interval."""
    charts = []
    models = sorted({r.model for r in records})
    colour = {m: PALETTE[n % len(PALETTE)] for n, m in enumerate(models)}
    metrics: list[str] = []
    for record in records:
        if record.value is not None and record.main_metric not in metrics:
            metrics.append(record.main_metric)
    for metric in metrics:
        shown = [r for r in records if r.main_metric == metric and r.value is not None]
        values = [r.value for r in shown if r.value is not None]
        highs = [r.ci95[1] for r in shown if r.ci95] + values
        top = 1.0 if min(values) >= 0 and max(highs) <= 1.0 else max(max(highs), 1e-9) * 1.05
        label_w, bar_w, row_h = 300, 420, 22
        height = row_h * len(shown) + 30
        parts = [f'<svg class="chart" role="img" width="{label_w + bar_w + 70}" height="{height}" '
                 f'viewBox="0 0 {label_w + bar_w + 70} {height}" xmlns="http://www.w3.org/2000/svg">',
                 f'<title>{_e(metric)} by run and model</title>']
        for n, record in enumerate(shown):
            y = 10 + n * row_h
            value = record.value or 0.0
            width = max(0.0, min(1.0, value / top)) * bar_w
            text = f"{record.label} {DOT} {record.model}"
            parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" class="bar-label">'
                         f'{_e(text if len(text) <= 48 else text[:47] + MORE)}</text>')
            parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row_h - 8}" '
                         f'fill="{colour[record.model]}"><title>{_e(text)}: {_num(record.value)}</title></rect>')
            if record.ci95:
                lo = label_w + max(0.0, min(1.0, record.ci95[0] / top)) * bar_w
                hi = label_w + max(0.0, min(1.0, record.ci95[1] / top)) * bar_w
                mid = y + row_h / 2 - 1
                parts.append(f'<path d="M{lo:.1f} {mid} H{hi:.1f} M{lo:.1f} {mid - 4} V{mid + 4} M{hi:.1f} '
                             f'{mid - 4} V{mid + 4}" stroke="#222" fill="none"/>')
            parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 14}" class="bar-value">{_num(value, 3)}</text>')
        axis_y = 10 + len(shown) * row_h + 4
        parts.append(f'<text x="{label_w}" y="{axis_y + 12}" class="axis">0</text>'
                     f'<text x="{label_w + bar_w}" y="{axis_y + 12}" text-anchor="end" class="axis">{top:g}</text>')
        parts.append("</svg>")
        direction = "lower is better" if lower_is_better(metric) else "higher is better"
        legend = "".join(f'<span class="swatch" style="background:{colour[m]}"></span>{_e(m)} ' for m in models)
        charts.append(f'<figure><figcaption>{_e(metric)} ({direction}; whiskers: 95% interval)</figcaption>'
                      f'{"".join(parts)}<div class="legend">{legend}</div></figure>')
    return "".join(charts)


def runs_table(records: list[RunRecord]) -> str:
    rows = []
    for n, r in enumerate(records):
        rows.append(
            f'<tr class="{_e(r.outcome)}"><td>{_e(r.model)}</td><td><a href="#run-{n}">{_e(r.label)}</a></td>'
            f'<td>{_e(r.main_metric)}</td><td class="num">{_num(r.value)}</td><td>{_ci(r.ci95)}</td>'
            f'<td class="num">{r.count}</td><td class="num">{r.cache_hits}/{r.requests}</td>'
            f'<td class="num">{r.seconds:.1f}</td><td>{_e(r.outcome)}</td></tr>')
    return ('<table class="runs"><thead><tr><th>model</th><th>run</th><th>metric</th><th>value</th>'
            '<th>95% interval</th><th>n</th><th>cache hits</th><th>seconds</th><th>outcome</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _change_list(title: str, changes: list[dict[str, Any]], css: str) -> str:
    if not changes:
        return ""
    items = "".join(
        f'<li><code>{_e(c["id"])}</code> <span class="was">{_e(c["baseline_output"])}</span> \u2192 '
        f'<span class="now">{_e(c["current_output"])}</span>'
        f' <span class="score">({_e(c.get("baseline_value"))} \u2192 {_e(c.get("current_value"))})</span></li>'
        for c in changes[:SHOWN_CHANGES])
    more = f"<li>... and {len(changes) - SHOWN_CHANGES} more</li>" if len(changes) > SHOWN_CHANGES else ""
    return f'<div class="changes {css}"><h4>{_e(title)} ({len(changes)})</h4><ul>{items}{more}</ul></div>'


def comparison_block(comparison: dict[str, Any]) -> str:
    verdict = "regression" if comparison.get("regression") else "no significant regression"
    metrics = "".join(
        f'<tr class="{"regression" if m["beyond_tolerance"] and m["significant"] else ""}">'
        f'<td>{_e(m["metric"])}</td><td class="num">{_num(m["baseline"])}</td><td class="num">{_num(m["current"])}</td>'
        f'<td class="num">{m["delta"]:+.4f}</td><td>{_e(m["tolerance"])}</td><td>{_e(m["test"])}</td>'
        f'<td class="num">{m["p_value"]:.4g}</td><td class="num">{m["paired"]}</td></tr>'
        for m in comparison.get("metrics", []))
    table = ('<table class="compare"><thead><tr><th>metric</th><th>baseline</th><th>now</th><th>change</th>'
             '<th>tolerance</th><th>test</th><th>p</th><th>paired</th></tr></thead>'
             f'<tbody>{metrics}</tbody></table>') if metrics else ""
    note = f'<p class="note">{_e(comparison["note"])}</p>' if comparison.get("note") else ""
    unpaired = ""
    if comparison.get("only_in_current") or comparison.get("only_in_baseline"):
        unpaired = (f'<p class="note">{comparison.get("only_in_current", 0)} instances not in the baseline, '
                    f'{comparison.get("only_in_baseline", 0)} baseline instances not run now</p>')
    return (f'<div class="comparison" data-testid="comparison"><p>Against baseline '
            f'<code>{_e(comparison.get("baseline"))}</code>: <strong>{verdict}</strong> '
            f'(level {comparison.get("alpha")})</p>{note}{unpaired}{table}'
            f'{_change_list(f"right {ARROW} wrong", comparison.get("right_to_wrong", []), "r2w")}'
            f'{_change_list(f"wrong {ARROW} right", comparison.get("wrong_to_right", []), "w2r")}'
            f'{_change_list("output text changed", comparison.get("changed_output", []), "changed")}</div>')


def changes_overview(records: list[RunRecord]) -> str:
    rows = []
    for n, r in enumerate(records):
        c = r.comparison
        if c is None:
            continue
        main = next((m for m in c.get("metrics", []) if m["metric"] == r.main_metric), None)
        figures = (f'{_num(main["baseline"])} \u2192 {_num(main["current"])} ({main["delta"]:+.4f}), '
                   f'p={main["p_value"]:.4g}') if main else _e(c.get("note", ""))
        rows.append(f'<tr class="{"regression" if c.get("regression") else ""}"><td>{_e(r.model)}</td>'
                    f'<td><a href="#run-{n}">{_e(r.label)}</a></td><td>{figures}</td>'
                    f'<td class="num">{len(c.get("right_to_wrong", []))}</td>'
                    f'<td class="num">{len(c.get("wrong_to_right", []))}</td>'
                    f'<td class="num">{len(c.get("changed_output", []))}</td>'
                    f'<td>{"REGRESSION" if c.get("regression") else "ok"}</td></tr>')
    if not rows:
        return ""
    return ('<section id="changes"><h2>Changes against the baseline</h2><table class="runs"><thead><tr>'
            '<th>model</th><th>run</th><th>main metric</th><th>right\u2192wrong</th><th>wrong\u2192right</th>'
            f'<th>changed outputs</th><th>verdict</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


def run_panel(n: int, r: RunRecord) -> str:
    stats = "".join(
        f'<tr><td>{_e(s["name"].get("name"))}</td><td>{_e(s["name"].get("split"))}</td>'
        f'<td class="num">{s.get("count")}</td><td class="num">{_num(s.get("mean"))}</td></tr>'
        for s in r.stats if not s["name"].get("perturbation"))
    failures = "".join(f"<pre class=\"failure\">{_e(f)}</pre>" for f in r.failures)
    comparison = comparison_block(r.comparison) if r.comparison else ""
    return (
        f'<details class="run {_e(r.outcome)}" id="run-{n}" data-run="{n}">'
        f'<summary><strong>{_e(r.label)}</strong> on {_e(r.model)} \u2014 {_e(r.main_metric)} '
        f'{_num(r.value)} (n={r.count}{", " + _ci(r.ci95) if r.ci95 else ""}) \u00b7 {r.seconds:.1f} s'
        f' \u00b7 {_e(r.outcome)}</summary>'
        f'<dl class="facts"><dt>HELM run</dt><dd><code>{_e(r.run)}</code></dd>'
        f'<dt>output</dt><dd><code>{_e(r.output_dir)}</code></dd>'
        f'<dt>requests</dt><dd>{r.requests} ({r.cache_hits} from the cache)</dd>'
        f'<dt>time</dt><dd>{r.seconds:.1f} s</dd><dt>item</dt><dd><code>{_e(r.nodeid)}</code></dd></dl>'
        f'{failures}{comparison}'
        f'<details class="stats"><summary>all stats</summary><table><thead><tr><th>metric</th><th>split</th>'
        f'<th>count</th><th>mean</th></tr></thead><tbody>{stats}</tbody></table></details>'
        '<div class="filters"><label><input type="checkbox" class="only-wrong"> only wrong</label> '
        '<input type="search" class="search" placeholder="filter text"> <span class="shown"></span></div>'
        '<div class="instances"></div></details>')


# --- the page --------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.5em}h2{margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 7px;vertical-align:top}
th{background:#f4f4f4;text-align:left}.num{text-align:right}.sub{font-size:.8em;color:#666}
.leaderboard td.cell{text-align:center}.leaderboard .value{font-weight:600;font-size:1.1em}
.failed,.error,tr.regression{background:#fdecea}.metric{font-weight:normal;color:#666;font-size:.85em}
details.run{border:1px solid #ccc;border-radius:4px;margin:.4em 0;padding:.3em .6em}
details.run>summary{cursor:pointer}.facts dt{float:left;clear:left;width:6em;color:#666}.facts dd{margin-left:7em}
pre{white-space:pre-wrap;word-break:break-word;margin:0}pre.failure{background:#fdecea;padding:.4em}
table.instances td{max-width:34em}.right{color:#1a7f37;font-weight:600}.wrong{color:#c62828;font-weight:600}
.refs li.correct{font-weight:600}.refs{margin:0;padding-left:1.2em}.filters{margin:.5em 0}
.chart text{font-size:12px}.swatch{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
.changes li{margin:.15em 0}.was{background:#fdecea}.now{background:#e6f4ea}.note{color:#555}
.chat{display:flex;flex-direction:column;gap:6px;max-width:52em}
.bubble{padding:6px 10px;border-radius:12px;max-width:75%;white-space:pre-wrap;word-break:break-word}
.bubble .who{display:block;font-size:.75em;color:#555}.from-gm{align-self:center;background:#eee}
.from-p1{align-self:flex-start;background:#dbeafe}.from-p2{align-self:flex-end;background:#dcfce7}
.event{align-self:center;font-size:.8em;color:#666;font-style:italic;white-space:pre-wrap}
"""

SCRIPT = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("llmeval-data").textContent);
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function verdict(inst, metric) {
    if (inst.correct === true) { return el("span", "right", "right"); }
    if (inst.correct === false) { return el("span", "wrong", "wrong"); }
    var v = inst.metrics ? inst.metrics[metric] : undefined;
    return el("span", "", v === undefined || v === null ? "n/a" : metric + " " + v);
  }
  function instanceRow(inst, metric) {
    var tr = el("tr", "instance");
    tr.dataset.wrong = inst.correct === false ? "1" : "0";
    tr.appendChild(el("td", "", inst.id + " (" + (inst.split || "") + ")" +
      (inst.perturbation ? " \u00b7 " + inst.perturbation : "")));
    var input = el("td");
    input.appendChild(el("pre", "input", inst.input));
    if (inst.prompt) {
      var det = el("details"); det.appendChild(el("summary", "", "full prompt"));
      det.appendChild(el("pre", "prompt", inst.prompt)); input.appendChild(det);
    }
    tr.appendChild(input);
    var refs = el("td"); var ul = el("ul", "refs");
    (inst.references || []).forEach(function (r) {
      ul.appendChild(el("li", r.correct ? "correct" : "", (r.correct ? "\u2713 " : "") + r.text));
    });
    refs.appendChild(ul); tr.appendChild(refs);
    var pred = el("td");
    pred.appendChild(el("pre", "prediction", inst.prediction === null ? inst.output : inst.prediction));
    if (inst.prediction !== null && inst.prediction !== inst.output) {
      pred.appendChild(el("div", "sub raw-output", "raw output: " + JSON.stringify(inst.output)));
    }
    tr.appendChild(pred);
    var res = el("td"); res.appendChild(verdict(inst, metric)); tr.appendChild(res);
    tr.dataset.text = [inst.id, inst.input, inst.output, inst.prediction].join("\n").toLowerCase();
    return tr;
  }
  function bubble(event, roles) {
    var type = event.type || "";
    if (type !== "send message" && type !== "get message" && type !== "send message (reprompt)") {
      return el("div", "event", event.from + " \u2192 " + event.to + " [" + type + "] " + event.content);
    }
    var speaker = event.from === "GM" ? "gm" : (event.from === "Player 2" ? "p2" : "p1");
    var node = el("div", "bubble from-" + speaker);
    node.appendChild(el("span", "who", event.from + " \u2192 " + event.to));
    node.appendChild(document.createTextNode(event.content));
    return node;
  }
  function episodeBlock(ep) {
    var det = el("details", "episode");
    var main = ep.scores ? ep.scores["Main Score"] : undefined;
    var score = main !== undefined ? " \u2014 Main Score " + (main === null ? "n/a" : main) : "";
    det.appendChild(el("summary", "",
      ep.game + " / " + ep.experiment + " / " + ep.episode + " (" + ep.players + ")" + score));
    det.addEventListener("toggle", function () {
      if (!det.open || det.dataset.rendered) { return; }
      det.dataset.rendered = "1";
      var scores = el("div", "sub", Object.keys(ep.scores || {}).map(function (k) {
        return k + ": " + (ep.scores[k] === null ? "n/a" : ep.scores[k]); }).join(" \u00b7 "));
      det.appendChild(scores);
      var chat = el("div", "chat");
      (ep.turns || []).forEach(function (turn, n) {
        chat.appendChild(el("div", "event", "turn " + n));
        turn.forEach(function (event) { chat.appendChild(bubble(event, ep.roles)); });
      });
      det.appendChild(chat);
    });
    return det;
  }
  function applyFilter(panel) {
    var onlyWrong = panel.querySelector(".only-wrong").checked;
    var needle = panel.querySelector(".search").value.toLowerCase();
    var rows = panel.querySelectorAll("tr.instance"); var shown = 0;
    rows.forEach(function (row) {
      var visible = (!onlyWrong || row.dataset.wrong === "1") && (!needle || row.dataset.text.indexOf(needle) >= 0);
      row.hidden = !visible; if (visible) { shown += 1; }
    });
    panel.querySelector(".shown").textContent = "showing " + shown + " of " + rows.length;
  }
  function renderRun(panel) {
    if (panel.dataset.rendered) { return; }
    panel.dataset.rendered = "1";
    var run = DATA.runs[Number(panel.dataset.run)];
    var box = panel.querySelector(".instances");
    if (run.instances.length) {
      var table = el("table", "instances"); var head = el("tr");
      ["instance", "input", "references", "prediction", "result"].forEach(function (h) {
        head.appendChild(el("th", "", h));
      });
      var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
      var body = el("tbody");
      run.instances.forEach(function (inst) { body.appendChild(instanceRow(inst, run.main_metric)); });
      table.appendChild(body); box.appendChild(table);
    }
    var episodes = DATA.episodes.filter(function (ep) {
      if (!run.game) { return ep.game && ep.game === run.scenario; }
      return ep.game === run.game.game && (!run.game.experiment || ep.experiment === run.game.experiment) &&
        (!run.game.players || ep.players === run.game.players);
    });
    episodes.forEach(function (ep) { box.appendChild(episodeBlock(ep)); });
    if (!run.instances.length && !episodes.length) { box.appendChild(el("p", "note", "no instance records")); }
    applyFilter(panel);
  }
  document.querySelectorAll("details.run").forEach(function (panel) {
    panel.addEventListener("toggle", function () { if (panel.open) { renderRun(panel); } });
    panel.querySelector(".only-wrong").addEventListener("change", function () { applyFilter(panel); });
    panel.querySelector(".search").addEventListener("input", function () { applyFilter(panel); });
  });
  function openFromHash() {
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (target && target.tagName === "DETAILS") { target.open = true; renderRun(target); }
  }
  document.querySelectorAll("a[href^='#run-']").forEach(function (link) {
    link.addEventListener("click", function () {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (target) { target.open = true; renderRun(target); }
    });
  });
  window.addEventListener("hashchange", openFromHash);
  openFromHash();
  var games = document.getElementById("episodes");
  if (games) { DATA.episodes.forEach(function (ep) { games.appendChild(episodeBlock(ep)); }); }
}());
"""


def report_data(records: list[RunRecord], episodes: list[dict[str, Any]]) -> str:
    """``script_json({"runs": [...], "episodes": episodes})`` (each run's scenario, main metric,
    game and instances), the same text built instance by instance: a report of many thousands
    of instances never holds all their dicts at once for the garbage collector to walk."""
    runs = ", ".join(
        f'{{"scenario": {script_json(r.scenario)}, "main_metric": {script_json(r.main_metric)}, '
        f'"game": {script_json(r.game)}, "instances": [{", ".join(script_json(i.to_json()) for i in r.instances)}]}}'
        for r in records)
    return f'{{"runs": [{runs}], "episodes": {script_json(episodes)}}}'


def render_report(summary: dict[str, Any], records: list[RunRecord], episodes: list[dict[str, Any]]) -> str:
    return "".join(report_parts(summary, records, episodes))


def report_parts(summary: dict[str, Any], records: list[RunRecord], episodes: list[dict[str, Any]]) -> list[str]:
    """The page as markup, embedded JSON, markup: written one after the other, a report of many
    megabytes is never copied into one string (nor widened to the markup's character width)."""
    records = sort_records(records)
    totals = summary.get("totals", {})
    baseline = ""
    if summary.get("baseline"):
        baseline = f" {DOT} compared with baseline <code>{_e(summary['baseline'])}</code>"
    games = ('<section><h2>Game episodes</h2><div id="episodes"></div></section>' if episodes else "")
    head = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pytest-llmeval report: {_e(summary.get("suite"))}</title><style>{CSS}</style></head>
<body>
<h1>pytest-llmeval report</h1>
<p>suite <code>{_e(summary.get("suite"))}</code> \u00b7 {_e(summary.get("created"))} \u00b7
{totals.get("runs", 0)} runs: {totals.get("passed", 0)} passed, {totals.get("failed", 0)} failed,
{totals.get("errors", 0)} errors \u00b7 {float(totals.get("seconds", 0.0)):.1f} s{baseline}</p>
<section><h2>Leaderboard</h2><p class="note">Main metric per model and run, with the number of evaluated
instances and a 95% interval (Wilson for right/wrong metrics, normal otherwise).</p>{leaderboard(records)}
{bar_charts(records)}</section>
{changes_overview(records)}
<section><h2>Runs</h2>{runs_table(records)}
{"".join(run_panel(n, r) for n, r in enumerate(records))}</section>
{games}
<script type="application/json" id="llmeval-data">"""
    return [head, report_data(records, episodes), f"""</script>
<script>{SCRIPT}</script>
</body></html>
"""]
