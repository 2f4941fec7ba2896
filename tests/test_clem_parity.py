"""clembench's games as our items against ``clem run`` + ``clem score`` + ``clem eval`` on the
same instances and the same scripted OpenAI-compatible server: every episode's scores and the
clemscore table are the same.

Both sides play clembench a717f23's folders unchanged on clemcore 3.7.2 inside
``pytest_llmeval.clem.compat.legacy_games()`` (``benchmarks/clem_reference.py --patch-clemcore``
runs clemcore's own command line in it): without it clemcore cannot play wordle,
wordle_withclue or privateshared at all.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_llmeval.games.episode_files import finite
from tests.clem_server import CLEMBENCH, MODEL, REFERENCE_GAMES, ClemScript, ScriptedClemServer
from tests.projects import make_importable, served_deployment

pytest.importorskip("clemcore")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CLEMBENCH.is_dir(), reason="clembench's games are not in ../shared/peers")]

ROOT = Path(__file__).resolve().parents[1]
PER_EXPERIMENT = 2  # the first two instances of every experiment: each game's four behaviours occur


def _reference_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clem_reference_parity", ROOT / "benchmarks" / "clem_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _scores(results: Path) -> dict[tuple[str, ...], Any]:
    """Every episode's whole ``scores.json`` (turn and episode scores, meta), keyed by its folders;
    of each player's model spec only the name, as the backends behind it differ by design."""
    found = {}
    for path in sorted((results / MODEL).rglob("scores.json")):
        scores = finite(json.loads(path.read_text()))
        for player in scores.get("player_models", {}).values():
            player["model_spec"] = player["model_spec"]["model_name"]
        found[path.parts[-4:-1]] = scores
    return found


def _requests(results: Path) -> dict[tuple[str, ...], list[tuple[int, str]]]:
    """Per episode, each player's calls as (round, what the player said)."""
    calls = {}
    for path in sorted((results / MODEL).rglob("player_*.requests.json")):
        said = [(c["round"], c["call"]["raw_response_obj"]["clem_player"]["response"])
                for c in json.loads(path.read_text())["calls"]]
        calls[(*path.parts[-4:-1], path.name)] = said
    return calls


def _our_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, base_url: str, selections: Path) -> Path:
    """Our items on the instances files clem run read (``instances:`` is clem run's ``-i``)."""
    served_deployment(pytester, MODEL, base_url)
    entries = "".join(f"  - {{game: {game}, instances: {str(selections / game) + '.json'!r}}}\n"
                      for game in REFERENCE_GAMES)
    (pytester.path / "games.yaml").write_text(f"game_dirs: [{str(CLEMBENCH)!r}]\ngames:\n{entries}")
    make_importable(pytester, monkeypatch)
    result = pytester.runpytest("--llmeval-models", MODEL, "-p", "no:cacheprovider")
    assert "failed" not in result.parseoutcomes() and result.parseoutcomes().get("passed"), result.stdout.str()
    return pytester.path / "benchmark_output" / "results"


def test_episode_scores_and_clemscore_equal_clemcores(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    reference_module = _reference_module()
    folder = tmp_path_factory.mktemp("clem-reference")
    reference = reference_module.reference(folder, list(REFERENCE_GAMES), PER_EXPERIMENT, patch=True)
    assert reference["unrecognised_chats"] == []
    assert not [row for row in reference["episodes"] if "error" in row]  # clemcore played every episode
    plans = {game: reference_module.plan_policies(game, reference_module.selected_instances(game, PER_EXPERIMENT))
             for game in REFERENCE_GAMES}
    script = ClemScript(policies=plans)
    with ScriptedClemServer(script) as server:
        ours = _our_run(pytester, monkeypatch, server.base_url, folder / "instances")
    assert script.unrecognised == []

    theirs = folder / "results"
    their_scores, our_scores = _scores(theirs), _scores(ours)
    assert len(their_scores) == len(reference["episodes"]) > 30
    assert sorted(our_scores) == sorted(their_scores)
    for key, scores in their_scores.items():
        assert our_scores[key] == scores, key
    assert _requests(ours) == _requests(theirs)
    outcomes = {row["outcome"] for row in reference["episodes"]}
    assert outcomes == {"success", "lose", "aborted"}

    table = json.loads((ours / "results.json").read_text())[MODEL]
    clem_eval = reference["clemscore_table"][MODEL]
    assert set(table["games"]) == set(REFERENCE_GAMES)
    for game, row in table["games"].items():
        assert row["% Played"] == pytest.approx(clem_eval[f"{game}, % Played"], abs=0.005), game
        assert row["Quality Score"] == pytest.approx(clem_eval[f"{game}, Quality Score"], abs=0.005), game
    assert table["clemscore"] == pytest.approx(clem_eval["-, clemscore"], abs=0.005)
