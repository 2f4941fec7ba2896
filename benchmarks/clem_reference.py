"""clemcore's own scores for five clembench games played by a scripted server: the reference
that pytest-llmeval's runs of the same games are compared to, episode by episode.

For taboo, wordle, wordle_withclue, privateshared and referencegame (clembench's folders in
``../shared/peers/clembench``, unchanged) it keeps the first ``--instances`` instances of each
experiment, starts the deterministic OpenAI-compatible server of ``tests/clem_server.py`` on
loopback (wins, losses, rule breaks and format errors in turn), and runs clemcore's command
line in a temporary folder, as a clembench user would:

    clem run -g GAME -m scripted-clem -i FOLDER/instances/GAME -r FOLDER/results
    clem score -g GAME -r FOLDER/results
    clem eval -r FOLDER/results

with ``model_registry.json`` (an ``openai_compatible`` entry), ``key.json`` (the server's
``base_url``) and ``game_registry.json`` (``benchmark_path`` at the clembench folder) in that
folder, and ``NLTK_DATA`` pointing at the English stop words taboo needs. It prints each
episode's scores (or the error clemcore recorded) and the clemscore table, and writes them as
JSON with ``--out``.

clemcore 3.7.2 cannot play three of these games as clembench a717f23 has them: every wordle
and wordle_withclue episode fails in setup, every privateshared episode in its first probing
round (``error.json`` in each episode folder says so, and so does this report).
``--patch-clemcore`` runs ``clem`` inside pytest-llmeval's ``legacy_games()`` (see ``PATCHED_CLEM``);
the report says whether it was on.

    python benchmarks/clem_reference.py [--instances 2] [--games taboo wordle] [--out FILE]
        [--patch-clemcore] [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pytest_llmeval.clem.nltk_data import ensure_nltk_data  # noqa: E402
from pytest_llmeval.games.episode_files import finite  # noqa: E402
from tests.clem_server import (  # noqa: E402
    CLEMBENCH,
    MODEL,
    REFERENCE_GAMES,
    ClemScript,
    ScriptedClemServer,
    first_instances,
    instance_key,
    plan_policies,
)

SHOWN = ("Main Score", "Aborted", "Success", "Lose", "Request Count", "Parsed Request Count",
         "Violated Request Count")


# clemcore 3.7.2 and clembench a717f23 disagree in a few places (see pytest_llmeval.clem.compat):
# wordle's own state dataclass lacks the fields clemcore's GameMaster.state setter reads, and
# privateshared probes round 0 in _on_before_game where clemcore >= 3.5 is in round -1. With
# --patch-clemcore, clem runs inside the same legacy_games() block that pytest-llmeval plays
# clembench's games in, so both sides play the games the same way.
PATCHED_CLEM = """
import sys
from clemcore.cli import main
from pytest_llmeval.clem.compat import legacy_games
sys.argv[0] = "clem"
with legacy_games():
    code = main()
sys.exit(code)
"""


def clem_command(patch: bool = False) -> list[str]:
    """clemcore's ``clem`` entry point, from the interpreter running this script."""
    if patch:
        return [sys.executable, "-c", PATCHED_CLEM]
    script = Path(sys.executable).with_name("clem")
    return [str(script)] if script.exists() else [sys.executable, "-m", "clemcore.cli"]


def prepare(folder: Path, base_url: str) -> None:
    """The files clemcore reads from its working directory."""
    (folder / "model_registry.json").write_text(json.dumps(
        [{"model_name": MODEL, "backend": "openai_compatible", "model_id": MODEL}], indent=2))
    (folder / "key.json").write_text(json.dumps(
        {"openai_compatible": {"api_key": "x", "base_url": base_url}}, indent=2))
    (folder / "game_registry.json").write_text(json.dumps([{"benchmark_path": str(CLEMBENCH)}], indent=2))


def selected_instances(game: str, per_experiment: int) -> dict[str, Any]:
    game_folder, name = REFERENCE_GAMES[game]
    instances = json.loads((CLEMBENCH / game_folder / "in" / f"{name}.json").read_text(encoding="utf-8"))
    return first_instances(instances, per_experiment)


def run_clem(args: list[str], folder: Path, env: dict[str, str], log: Path, patch: bool) -> float:
    """One ``clem`` command in ``folder``; its output goes to ``log``; stops the script on failure."""
    started = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run([*clem_command(patch), *args], cwd=folder, env=env, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"clem {' '.join(args)} exited with {done.returncode}:\n{tail}")
    return time.perf_counter() - started


def episodes(results: Path, game: str, instances: dict[str, Any], plan: dict[str, str]) -> list[dict[str, Any]]:
    """Each selected instance's episode scores from clemcore's ``scores.json``, in file order."""
    rows = []
    for experiment in instances["experiments"]:
        for instance in experiment["game_instances"]:
            game_id = int(instance["game_id"])
            episode = results / MODEL / game / experiment["name"] / f"instance_{game_id:05d}"
            scores_file = episode / "scores.json"
            scores = json.loads(scores_file.read_text()) if scores_file.exists() else {}
            episode_scores = finite(scores.get("episode scores", {}))
            error_file = episode / "error.json"
            error = json.loads(error_file.read_text()) if error_file.exists() else None
            row = {"game": game, "experiment": experiment["name"], "game_id": game_id,
                   "policy": plan[instance_key(game, instance)],
                   "outcome": outcome(episode_scores) if scores else "error" if error else "no scores",
                   "episode_scores": episode_scores}
            if error:
                row["error"] = f"{error.get('error')}: {error.get('message')}"
            rows.append(row)
    return rows


def outcome(scores: dict[str, Any]) -> str:
    if scores.get("Aborted"):
        return "aborted"
    if scores.get("Success"):
        return "success"
    return "lose" if scores.get("Lose") else "neither"


def clemscore_table(results: Path) -> dict[str, dict[str, float | None]]:
    """``clem eval``'s results.csv: per model row, each column as a number."""
    with (results / "results.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        table: dict[str, dict[str, float | None]] = {}
        for row in reader:
            model = row.pop("") or "?"
            table[model] = {column: (float(value) if value not in ("", "nan") else None)
                            for column, value in row.items()}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=2, help="instances per experiment (the first ones)")
    parser.add_argument("--games", nargs="+", default=list(REFERENCE_GAMES), choices=list(REFERENCE_GAMES))
    parser.add_argument("--out", type=Path, help="write the episodes and the clemscore table as JSON here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--patch-clemcore", action="store_true",
                        help="run clem inside pytest-llmeval's legacy_games(), which lets clembench "
                             "a717f23's wordle and privateshared play on clemcore 3.7 (see PATCHED_CLEM)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clem-reference-") as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        report = reference(folder, args.games, args.instances, args.patch_clemcore)
    print_report(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwritten to {args.out}")


def reference(folder: Path, games: list[str], per_experiment: int, patch: bool = False) -> dict[str, Any]:
    """Play, score and evaluate the games with clemcore in ``folder``; the report as a dict."""
    selections = {game: selected_instances(game, per_experiment) for game in games}
    plans = {game: plan_policies(game, selections[game]) for game in games}
    (folder / "instances").mkdir(exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    for game, selection in selections.items():
        (folder / "instances" / f"{game}.json").write_text(json.dumps(selection, ensure_ascii=False))
    results = folder / "results"
    env = {**os.environ, "NLTK_DATA": str(ensure_nltk_data(folder / "nltk_data")), "PYTHONDONTWRITEBYTECODE": "1",
           "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    seconds: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    script = ClemScript(policies=plans)
    with ScriptedClemServer(script) as server:
        prepare(folder, server.base_url)
        for game in games:
            seconds[f"run {game}"] = run_clem(
                ["run", "-g", game, "-m", MODEL, "-i", str(folder / "instances" / game), "-r", str(results)],
                folder, env, folder / "logs" / f"run_{game}.log", patch)
            seconds[f"score {game}"] = run_clem(["score", "-g", game, "-r", str(results)], folder, env,
                                                folder / "logs" / f"score_{game}.log", patch)
            rows.extend(episodes(results, game, selections[game], plans[game]))
        requests = server.requests_served
    seconds["eval"] = run_clem(["eval", "-r", str(results)], folder, env, folder / "logs" / "eval.log",
                               patch)
    return {"model": MODEL, "clemcore": version("clemcore"), "instances_per_experiment": per_experiment,
            "patched_clemcore": patch,
            "instances_files": {game: f"{REFERENCE_GAMES[game][0]}/in/{REFERENCE_GAMES[game][1]}.json"
                                for game in games},
            "server_requests": requests, "unrecognised_chats": script.unrecognised,
            "episodes": rows, "clemscore_table": clemscore_table(results),
            "seconds": {step: round(value, 2) for step, value in seconds.items()}}


def print_report(report: dict[str, Any]) -> None:
    print(f"{'game':16} {'experiment':40} {'id':>3} {'policy':12} {'outcome':8} "
          + " ".join(f"{name.replace(' Request Count', '').replace('Request Count', 'Requests'):>9}"
                     for name in SHOWN))
    for row in report["episodes"]:
        scores = row["episode_scores"]
        cells = []
        for name in SHOWN:
            value = scores.get(name)
            cells.append(f"{'nan' if value is None else round(float(value), 2):>9}")
        print(f"{row['game']:16} {row['experiment']:40} {row['game_id']:>3} {row['policy']:12} "
              f"{row['outcome']:8} " + (row.get("error") or " ".join(cells)))
    for model, columns in report["clemscore_table"].items():
        print(f"\nclem eval, {model}:")
        for column, value in columns.items():
            print(f"  {column:45} {value}")
    if report["unrecognised_chats"]:
        print("\nchats the script did not recognise:", *report["unrecognised_chats"], sep="\n  ")
    print("\nseconds:", ", ".join(f"{step} {value}" for step, value in report["seconds"].items()),
          f"({report['server_requests']} requests)")


if __name__ == "__main__":
    main()
