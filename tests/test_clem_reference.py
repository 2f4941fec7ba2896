"""The scripted clembench server against clemcore itself: ``clem run`` and ``clem score`` on
taboo score each scripted episode as designed, so the reference that our runs of clembench's
games are compared to (``benchmarks/clem_reference.py``) rests on outcomes clemcore agrees with."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.clem_server import (
    CLEMBENCH,
    MODEL,
    OUTCOMES,
    REFERENCE_GAMES,
    ClemScript,
    ScriptedClemServer,
    first_instances,
    plan_policies,
    wordle_feedback,
    wordle_solver,
)

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not CLEMBENCH.is_dir(), reason="clembench's games are not in ../shared/peers")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _instances(game: str, per_experiment: int) -> dict[str, Any]:
    folder, name = REFERENCE_GAMES[game]
    return first_instances(json.loads((CLEMBENCH / folder / "in" / f"{name}.json").read_text()), per_experiment)


def test_feedback_is_wordles_own() -> None:
    """The script's feedback is clembench's GuessValidator's, repeated letters included."""
    validator = _load("clembench_wordle_guessvalidator", CLEMBENCH / "wordle" / "utils" / "guessvalidator.py")
    targets = [*wordle_solver().targets[::97], "spree", "error", "boost", "stoop", "eerie"]
    guesses = ["soare", "spree", "error", "stoop", "eerie", "llama", "geese", targets[3]]
    for target in targets:
        for guess in guesses:
            assert wordle_feedback(guess, target) == validator.GuessValidator(target).validate(guess), (guess, target)


def test_every_outcome_is_planned_for_every_game() -> None:
    """Two instances per experiment get each game's four behaviours, and wordle's keys (the
    targets its probing finds from feedback alone) tell the episodes apart."""
    for game in REFERENCE_GAMES:
        instances = _instances(game, 2)
        assert set(plan_policies(game, instances).values()) >= set(OUTCOMES), game
    wordle = _instances("wordle", 2)
    targets = [i["target_word"] for e in wordle["experiments"] for i in e["game_instances"]]
    assert set(plan_policies("wordle", wordle)) == set(targets)


def test_server_speaks_the_openai_protocol() -> None:
    """clemcore's openai_compatible backend parses the replies (openai 2.x types), usage included."""
    openai = pytest.importorskip("openai")
    taboo = _instances("taboo", 1)["experiments"][0]
    instance = taboo["game_instances"][0]
    prompt = (taboo["describer_initial_prompt"].replace("$TARGET_WORD$", instance["target_word"])
              .replace("$REL_WORD$", "\n".join(f"- {w}" for w in instance["related_word"]))
              .replace("$N$", str(taboo["max_turns"])))
    with ScriptedClemServer(ClemScript({"taboo": plan_policies("taboo", _instances("taboo", 1))})) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        assert [m.id for m in client.models.list()] == [MODEL]
        answer = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                                max_tokens=300, temperature=0.0)
        assert answer.choices[0].message.content == "CLUE: xjoufs"  # "winter", one letter on
        assert answer.usage is not None and answer.usage.completion_tokens == 2
        guess = client.chat.completions.create(model=MODEL, messages=[
            {"role": "user", "content": "You have to guess a target word that another player describes "
                                        "to you.\n\nCLUE: xjoufs"}])
        assert guess.choices[0].message.content == "GUESS: winter"
        assert server.script.unrecognised == []


@pytest.mark.slow
def test_clemcore_scores_the_scripted_taboo_episodes_as_designed(tmp_path: Path) -> None:
    """``clem run``, ``clem score`` and ``clem eval`` on one instance of each taboo experiment."""
    pytest.importorskip("clemcore")
    reference = _load("clem_reference", ROOT / "benchmarks" / "clem_reference.py")
    report = reference.reference(tmp_path, ["taboo"], 1)
    assert report["unrecognised_chats"] == []
    rows = {(row["experiment"], row["game_id"]): row for row in report["episodes"]}
    assert {key: row["policy"] for key, row in rows.items()} == {
        ("high_en", 0): "win", ("medium_en", 0): "lose", ("low_en", 0): "rule_break"}
    win, lose, rule_break = (rows[key]["episode_scores"] for key in (("high_en", 0), ("medium_en", 0), ("low_en", 0)))
    shown = ("Success", "Lose", "Aborted", "Main Score", "Request Count")
    assert tuple(win[name] for name in shown) == (1, 0, 0, 100, 1)
    assert tuple(lose[name] for name in shown) == (0, 1, 0, 0, 3)
    # a clue with the target word ends the game as a loss, not an abort, and no guess is asked for
    assert (rule_break["Lose"], rule_break["Aborted"], rule_break["Request Count"]) == (1, 0, 1)
    table = report["clemscore_table"][MODEL]
    assert table["taboo, % Played"] == 100.0
    assert table["taboo, Quality Score"] == pytest.approx(33.33)
    assert table["-, clemscore"] == pytest.approx(33.33)
    assert report["server_requests"] == 2 + 2 * 3 + 1
