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
      var score = typeof r.score === "number" ? "  (log-likelihood " + r.score.toFixed(3) + ")" : "";
      ul.appendChild(el("li", r.correct ? "correct" : "", (r.correct ? "\u2713 " : "") + r.text + score));
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
