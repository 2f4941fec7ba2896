"""wordle and wordle_withclue, with clembench's rules and scoring.

A reply must start with ``explanation:``, have at most two lines and contain ``guess:``
exactly once (else the episode aborts); the guess must be one word of five letters (else it
aborts); a five-letter word missing from the game's word list is re-prompted up to
``max_retry_per_error`` times (counted as parsed) before the episode aborts. Feedback marks
each letter green, yellow or red. Main Score by rounds used: wordle 100, 100, 100, 50, 30, 20
for 1-6; wordle_withclue 100 / rounds (2 decimals); 0 on a loss; NaN when aborted.

Experiments are read as clembench's wordle reads them, so its own ``instances*.json`` play
unchanged: the keywords and word list from ``lang_keywords`` (``official_words_list``), the
rounds and retries from ``common_config``, and the fallbacks for its older files (no
``lang_keywords`` but ``english_words``, ``max_attempts_per_game``, a retry count as a number, the
prompt as a message list). wordle_withcritic (a second, critic player) is not played by this master.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pytest_llmeval.games.master import DialogueGameMaster
from pytest_llmeval.games.metrics import BENCH_SCORE, METRIC_ABORTED, METRIC_LOSE
from pytest_llmeval.games.player import Player
from pytest_llmeval.games.scorer import GameScorer

GUESSER_GUESSES = "Guesser Guesses"
GUESSER_FEEDBACKS = "Guesser Feedbacks"
GUESS_REPETITIONS = "Guess Repetitions"
SPEED_SCORES = {1: 100, 2: 100, 3: 100, 4: 50, 5: 30, 6: 20}


class ResponseError(Exception):
    def __init__(self, reason: str, key: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key = key


class ParseError(ResponseError):
    """The reply does not follow the explanation/guess format."""


class RuleViolationError(ResponseError):
    """The guess is not a single five-letter word."""


class UnknownWordError(RuleViolationError):
    """A five-letter word that is not in the game's word list: re-prompted."""


def letter_feedback(guess: str, target: str) -> str:
    """``a<green> b<yellow> c<red> ...``: greens first, then yellows without over-counting letters."""
    colours = ["red"] * len(target)
    remaining: list[str | None] = list(target)
    for i, letter in enumerate(guess):
        if letter == target[i]:
            colours[i] = "green"
            remaining[i] = None
    for i, letter in enumerate(guess):
        if colours[i] != "green" and letter in remaining:
            colours[i] = "yellow"
            remaining[remaining.index(letter)] = None
    return " ".join(f"{letter}<{colour}>" for letter, colour in zip(guess, colours))


def parse_reply(reply: str, words: dict[str, Any]) -> tuple[str, str]:
    """The guess and the explanation, or :class:`ParseError`."""
    if not reply or not reply.startswith(words["explanation_lang"]):
        raise ParseError(f"the reply must start with '{words['explanation_lang']}'", "INVALID_START_WORD")
    lines = reply.strip().split("\n")
    if len(lines) > 2:
        raise ParseError("the reply may only have the explanation and guess lines", "UNKNOWN_TAGS")
    guesses = re.findall(rf"{re.escape(words['guess_lang'])}([^\n]*)", reply, re.IGNORECASE)
    if len(guesses) != 1:
        raise ParseError(f"the reply must contain '{words['guess_lang']}' exactly once", "MORE_THAN_ONE_GUESS")
    explanation = re.search(rf"{re.escape(words['explanation_lang'])}([^\n]*)", reply, re.IGNORECASE)
    return guesses[0].strip().lower(), explanation.group(1).strip() if explanation else ""


def check_guess(guess: str, words: dict[str, Any], allowed: set[str]) -> None:
    if not guess.isalpha() or " " in guess:
        raise RuleViolationError("the guess must be one word of letters only", "INVALID_FORMAT")
    if len(guess) != words["max_word_length"]:
        raise RuleViolationError(f"the guess must have {words['max_word_length']} letters", "INVALID_WORD_LENGTH")
    if guess not in allowed:
        raise UnknownWordError("the guess is not in the game's word list", "NOT_VALID_WORD_FOR_GAME")


class WordGuesser(Player):
    def _custom_response(self, messages: list[dict[str, str]], turn_idx: int) -> str:
        return "explanation: a common opening word\nguess: stare"


def older_version_words(experiment: dict[str, Any]) -> dict[str, Any]:
    """The keywords clembench's wordle assumes for instance files written before ``lang_keywords``."""
    return {
        "max_word_length": experiment["common_config"]["max_word_length"],
        "official_words_list": experiment["english_words"],
        "clue_lang": "clue:", "guess_lang": "guess:", "guess_word_lang": "word", "explanation_lang": "explanation:",
        "explanataion_details_lang": "details", "guess_feedback_lang": "guess_feedback:",
        "error_prompt_text": {
            "INVALID_WORD_LENGTH": "The guess should have exactly 5 letters.",
            "INVALID_WORD": "The guess should contain only letters.",
            "NOT_VALID_WORD_FOR_GAME": "Your guess is not a valid word for this game.",
            "INVALID_FORMAT": "Provide your response only in this format.",
            "RETRY": "Please try again.",
        },
    }


def first_content(prompt: Any) -> str:
    """A prompt as text: older files hold it as a list of messages."""
    return str(prompt[0]["content"] if isinstance(prompt, list) else prompt)


class Wordle(DialogueGameMaster):
    def _on_setup(self, **game_instance: Any) -> None:
        experiment = self.experiment
        config = experiment["common_config"]
        self.words: dict[str, Any] = experiment.get("lang_keywords") or older_version_words(experiment)
        self.n_turns = int(config.get("n_turns") or config["max_attempts_per_game"])
        retries = config.get("max_retry_per_error")
        self.max_retry = int(retries["NOT_VALID_WORD_FOR_GAME"] if isinstance(retries, dict) else retries)
        # clembench's files carry the word list in the keywords; this project's older ones beside them
        self.allowed = set(self.words.get("official_words_list") or experiment["allowed_words"])
        self.target_word = game_instance["target_word"].strip().lower()
        self.guesser = WordGuesser(self.player_models[0], game_role="WordGuesser")
        self.add_player(self.guesser)
        self.error: ResponseError | None = None
        self.rejected = ""  # the reply a re-prompt answers
        self.reprompts = 0
        self.guesses: list[str] = []
        self.feedbacks: list[str] = []

    def _format_hint(self) -> str:
        w = self.words
        details = w.get("explanataion_details_lang", w.get("explanation_details_lang"))  # clembench's spelling first
        return (f"{w['error_prompt_text']['INVALID_FORMAT']}\n{w['explanation_lang']} {details}\n"
                f"{w['guess_lang']} {w['guess_word_lang']}")

    def _first_message(self) -> str:
        return first_content(self.experiment["guesser_prompt"])

    def _turn_stats(self, feedback: str) -> str:
        return (f"attempts = {self.current_turn + 1}\ntarget_word = {self.target_word}\n"
                f"guess = {self.current_guess}\nguess_feedback = {feedback}")

    def _on_before_game(self) -> None:
        self.add_user_message(self.guesser, self._first_message())

    def _validate_player_response(self, player: Player, utterance: str) -> bool:
        self.error = None
        try:
            guess, _ = parse_reply(utterance, self.words)
            check_guess(guess, self.words, self.allowed)
        except ResponseError as exc:
            self.error = exc
            self.rejected = utterance
            self.log_to_self("metadata", f"Error: {exc.reason}")
            if isinstance(exc, UnknownWordError):
                self.count_as_parsed()  # clembench counts it as parsed, then re-prompts
            else:
                self.log_to_self("invalid format", "game_result = ABORT")
                self.aborted = True
            return False
        self.current_guess = guess
        self.reprompts = 0
        return True

    def _should_reprompt(self, player: Player) -> bool:
        if not isinstance(self.error, UnknownWordError) or self.aborted:
            return False
        self.reprompts += 1
        if self.reprompts > self.max_retry:
            self.log_to_self("invalid format", "game_result = ABORT")
            self.aborted = True
            return False
        return True

    def _on_before_reprompt(self, player: Player) -> None:
        """The rejected reply stays in the guesser's history, as clemcore keeps every reply."""
        assert self.error is not None
        text = self.words["error_prompt_text"]
        self.add_assistant_message(player, self.rejected)
        self.add_user_message(player, f"{text[self.error.key]} {text['RETRY']}\n\n{self._format_hint()}")

    def _after_add_player_response(self, player: Player, utterance: str) -> None:
        feedback = letter_feedback(self.current_guess, self.target_word)
        self.guesses.append(self.current_guess)
        self.feedbacks.append(feedback)
        self.log_to_self("metadata", self._turn_stats(feedback))
        if self.current_guess == self.target_word:
            self.log_to_self("correct guess", "game_result = WIN")
            self.success = True
        elif self.current_turn + 1 >= self.n_turns:
            self.log_to_self("max rounds played", "game_result = LOSS")
            self.lose = True
        else:
            self.add_user_message(player, f"{self.words['guess_feedback_lang']} {feedback}\n\n{self._format_hint()}")

    def _on_after_game(self) -> None:
        self.log_key(GUESSER_GUESSES, self.guesses)
        self.log_key(GUESSER_FEEDBACKS, self.feedbacks)


class WordleWithClue(Wordle):
    def _first_message(self) -> str:
        clue = self.game_instance["target_word_clue"].strip()
        return f"{super()._first_message()}\n\n{self.words['clue_lang']} {clue}"

    def _turn_stats(self, feedback: str) -> str:
        return (f"attempts = {self.current_turn + 1}\ntarget_word = {self.target_word}\n"
                f"target_word_clue = {self.game_instance['target_word_clue'].strip()}\n"
                f"guess = {self.current_guess}\nguess_feedback = {feedback}")


class WordleScorer(GameScorer):
    def log_main_score(self, interactions: dict[str, Any]) -> None:
        guesses = interactions.get(GUESSER_GUESSES, [])
        rounds = len(interactions["turns"])
        if interactions[METRIC_ABORTED]:
            self.log_episode_score(BENCH_SCORE, math.nan)
            self.log_episode_score(GUESS_REPETITIONS, math.nan)
            return
        if interactions[METRIC_LOSE]:
            self.log_episode_score(BENCH_SCORE, 0)
        elif self.game_name == "wordle":
            self.log_episode_score(BENCH_SCORE, SPEED_SCORES[rounds])
        else:
            self.log_episode_score(BENCH_SCORE, round(100 / rounds, 2))
        self.log_episode_score(GUESS_REPETITIONS, len(guesses) - len(set(guesses)))
