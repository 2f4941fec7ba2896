"""A deterministic OpenAI-compatible chat server on loopback that plays five clembench games.

Every reply is a function of the chat it answers and nothing else (no memory between
requests), so parallel episodes cannot mix and a cached reply is still the right one. The
script recognises the game and the role from clembench's own prompt texts and follows one
policy per episode:

- taboo: ``win`` (the describer spells the target word shifted one letter, ``winter`` ->
  ``xjoufs``, which passes the taboo check; the guesser shifts it back and guesses it at once),
  ``win_late`` (the same, after one wrong guess), ``lose`` (wrong guesses until the turns run
  out), ``rule_break`` (the describer says the target word), ``format_error`` (the guesser
  answers without ``GUESS:``);
- wordle, wordle_withclue: first valid words that cannot be targets, chosen to narrow the
  game's target words down from the feedback until one is left (see :class:`WordleSolver`);
  then ``win`` (guess it), ``lose`` (more words that cannot be targets), ``rule_break`` (a
  five-letter non-word, which is re-prompted, then a four-letter word, which aborts),
  ``format_error`` (no ``explanation:`` tag);
- privateshared: ``win`` (each answer gives the asked slot's value; each probe says yes exactly
  when that value was already given), ``lose`` (the first answer withholds the value),
  ``rule_break`` (the first answer has a second line), ``format_error`` (probes answered
  without ``ASIDE:``, so the first probing round aborts);
- referencegame: ``win`` (the giver spells the target grid's rows; the follower picks the
  grid with those rows), ``lose`` (the follower picks another grid), ``rule_break`` (the giver
  adds a second paragraph, which the strict mode forbids), ``format_error`` (the follower
  answers without ``Answer:``).

An episode's policy is looked up by a key both roles can read from their own chat (taboo:
the target word; wordle: the target the feedback leaves; wordle_withclue: the clue; privateshared:
a hash of the initial prompt; referencegame: the three grids and the target).
:func:`plan_policies` assigns the policies in turn to the instances of a run, so every
outcome occurs; keys outside the plan fall back to a hash of the key.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.servers import LoopbackHTTPServer

CLEMBENCH = Path(__file__).resolve().parents[2] / "shared" / "peers" / "clembench"
MODEL = "scripted-clem"
# game name -> (game folder in clembench, instances file name without .json). referencegame's
# clemgame.json names no instances file and its in/ has no instances.json: v2.0 English it is.
REFERENCE_GAMES: dict[str, tuple[str, str]] = {
    "taboo": ("taboo", "instances"),
    "wordle": ("wordle", "instances"),
    "wordle_withclue": ("wordle", "instances_withclue"),
    "privateshared": ("privateshared", "instances"),
    "referencegame": ("referencegame", "instances_v2.0_en"),
}
OUTCOMES = ("win", "lose", "rule_break", "format_error")
POLICY_CYCLES: dict[str, tuple[str, ...]] = {game: OUTCOMES for game in REFERENCE_GAMES}
POLICY_CYCLES["taboo"] = (*OUTCOMES, "win_late")
WRONG_GUESSES = ("apple", "river", "stone", "cloud", "bread")
Chat = Sequence[Mapping[str, Any]]


# --- keys and policies ---------------------------------------------------------------------

def wordle_feedback(guess: str, target: str) -> str:
    """wordle's GuessValidator.validate, letter for letter (greens first, then yellows)."""
    if guess == target:
        return " ".join(f"{letter}<green>" for letter in guess)
    colours = ["red"] * len(target)
    left: list[str | None] = list(target)
    for i, letter in enumerate(guess):
        if letter == left[i]:
            colours[i], left[i] = "green", None
    for i, letter in enumerate(guess):
        if colours[i] != "green" and letter in left:
            colours[i] = "yellow"
            left[left.index(letter)] = None
    return " ".join(f"{letter}<{colour}>" for letter, colour in zip(guess, colours))


def grid_rows(grid: str) -> str:
    """A grid as one token: its rows without the spaces between cells, joined by ``/``."""
    return "/".join(line.replace(" ", "") for line in grid.strip().splitlines())


def grids_key(target: str, grids: Iterable[str]) -> str:
    return target + "|" + "|".join(sorted(grids))


class WordleSolver:
    """Finds wordle's target from the feedback alone, guessing only words that cannot be
    targets (valid guesses outside the game's target word lists) until one target is left.

    The key of an episode is that target, or the first feedbacks if four probes leave more
    than one; each probe is the word of a fixed pool that leaves the fewest candidates in the
    worst case, so the same target always gives the same guesses.
    """

    FIRST = "soare"
    PROBES = 4

    def __init__(self, clembench: Path = CLEMBENCH) -> None:
        folder = clembench / "wordle"
        words: dict[str, None] = {}
        for level in ("easy", "medium", "hard"):
            path = folder / "resources" / "target_words" / "en" / f"{level}_words.txt"
            if path.exists():
                words.update(dict.fromkeys(w.strip().lower() for w in path.read_text().split()))
        self.targets = [w for w in words if len(w) == 5 and w.isalpha()]
        instances = json.loads((folder / "in" / "instances.json").read_text(encoding="utf-8"))
        allowed = sorted(set(instances["experiments"][0]["lang_keywords"]["official_words_list"]))
        outside = [w for w in allowed if w not in words and len(w) == 5 and w.isalpha() and len(set(w)) == 5]
        self.pool = [self.FIRST, *[w for w in outside[::10] if w != self.FIRST]]
        self._probes: dict[tuple[tuple[str, str], ...], str] = {}
        self._lock = threading.Lock()

    def consistent(self, history: Sequence[tuple[str, str]]) -> list[str]:
        return [w for w in self.targets if all(wordle_feedback(g, w) == f for g, f in history)]

    def _probe(self, history: Sequence[tuple[str, str]], candidates: list[str]) -> str:
        seen = tuple(history)
        guesses = {g for g, _ in history}
        with self._lock:
            if seen not in self._probes:
                def worst(word: str) -> int:
                    sizes: dict[str, int] = {}
                    for candidate in candidates:
                        feedback = wordle_feedback(word, candidate)
                        sizes[feedback] = sizes.get(feedback, 0) + 1
                    return max(sizes.values())
                self._probes[seen] = min((w for w in self.pool if w not in guesses), key=worst)
            return self._probes[seen]

    def identify(self, history: Sequence[tuple[str, str]]) -> tuple[str | None, str | None]:
        """``(key, None)`` once the probing is over, else ``(None, next probe)``."""
        for done in range(len(history) + 1):
            prefix = history[:done]
            candidates = self.consistent(prefix)
            if len(candidates) == 1:
                return candidates[0], None
            if done >= self.PROBES or not candidates:
                return " / ".join(f for _, f in prefix), None
            if done == len(history):
                return None, self.FIRST if not prefix else self._probe(prefix, candidates)
        raise AssertionError("unreachable")

    def key_for(self, target: str) -> str:
        """The key the script arrives at when the target is ``target``."""
        history: list[tuple[str, str]] = []
        while True:
            key, probe = self.identify(history)
            if key is not None:
                return key
            assert probe is not None
            history.append((probe, wordle_feedback(probe, target)))


@functools.cache
def wordle_solver(clembench: Path = CLEMBENCH) -> WordleSolver:
    """One solver per clembench folder (its word lists and probe choices are the same for all)."""
    return WordleSolver(clembench)


def digest(text: str) -> str:
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def instance_key(game: str, instance: Mapping[str, Any]) -> str:
    """The key the script reads from the chat of this instance's episode."""
    if game == "taboo":
        return str(instance["target_word"]).lower()
    if game == "wordle":
        return wordle_solver().key_for(str(instance["target_word"]).strip().lower())
    if game == "wordle_withclue":
        return str(instance["target_word_clue"]).strip()
    if game == "privateshared":
        return digest(str(instance["initial_prompt"]))
    if game == "referencegame":
        grids = [grid_rows(instance[f"player_1_{name}_grid"]) for name in ("target", "second", "third")]
        return grids_key(grids[0], grids)
    raise ValueError(f"no scripted player for game {game!r}")


def first_instances(instances: Mapping[str, Any], per_experiment: int) -> dict[str, Any]:
    """An instances file keeping the first ``per_experiment`` instances of each experiment."""
    experiments = [{**experiment, "game_instances": list(experiment["game_instances"])[:per_experiment]}
                   for experiment in instances["experiments"]]
    return {**instances, "experiments": experiments}


def plan_policies(game: str, instances: Mapping[str, Any]) -> dict[str, str]:
    """Assign the game's policies in turn to the instances' keys, in file order."""
    cycle = POLICY_CYCLES[game]
    plan: dict[str, str] = {}
    for experiment in instances["experiments"]:
        for instance in experiment["game_instances"]:
            key = instance_key(game, instance)
            plan.setdefault(key, cycle[len(plan) % len(cycle)])
    return plan


def fallback_policy(game: str, key: str) -> str:
    cycle = POLICY_CYCLES[game]
    return cycle[int(digest(key), 16) % len(cycle)]


# --- the script ----------------------------------------------------------------------------

def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return str(content or "")


def _shift(word: str, by: int) -> str:
    return "".join(chr((ord(c) - 97 + by) % 26 + 97) if "a" <= c <= "z" else c for c in word)


class ClemScript:
    """The scripted players; ``reply(messages)`` is what the server answers."""

    def __init__(self, policies: Mapping[str, Mapping[str, str]] | None = None,
                 clembench: Path = CLEMBENCH) -> None:
        self.policies = {game: dict(plan) for game, plan in (policies or {}).items()}
        self.clembench = clembench
        self.unrecognised: list[str] = []
        self._lock = threading.Lock()
        self._questions: list[tuple[str, str]] | None = None
        self._probes: list[tuple[str, str]] | None = None

    def policy(self, game: str, key: str) -> str:
        return self.policies.get(game, {}).get(key) or fallback_policy(game, key)

    def _unknown(self, what: str, messages: Chat) -> None:
        first = next((_text(m) for m in messages if m.get("role") == "user"), "")
        with self._lock:
            self.unrecognised.append(f"{what}: {first[:160]!r}")

    def reply(self, messages: Chat) -> str:
        users = [_text(m) for m in messages if m.get("role") == "user"]
        first = users[0] if users else ""
        if "describe a target word for another player" in first:
            return self._taboo_describer(messages, first)
        if "guess a target word that another player describes" in first:
            return self._taboo_guesser(messages, users)
        if "Welcome to Wordle!" in first:
            return self._wordle(messages, users)
        if "Please reply in the form: ANSWER:" in first and "ASIDE:" in first:
            return self._privateshared(messages, users)
        if "Target grid:" in first:
            return self._reference_giver(messages, first)
        if "select the grid that matches" in first:
            return self._reference_follower(messages, first)
        self._unknown("game", messages)
        return "I do not know this game."

    # taboo ----------------------------------------------------------------------------------

    def _taboo_describer(self, messages: Chat, prompt: str) -> str:
        found = re.search(r"needs to guess:\s*\n+\s*(\S+)", prompt)
        if not found:
            self._unknown("taboo target", messages)
            return "CLUE: something"
        target = found.group(1).strip().lower()
        if self.policy("taboo", target) == "rule_break":
            return f"CLUE: {target}"
        return f"CLUE: {_shift(target, 1)}"

    def _taboo_guesser(self, messages: Chat, users: list[str]) -> str:
        clues = [found.group(1) for text in users for found in re.finditer(r"CLUE:\s*(\S+)", text)]
        if not clues:
            self._unknown("taboo clue", messages)
            return "GUESS: nothing"
        target = _shift(clues[0].lower().strip(".,!?"), -1)
        policy = self.policy("taboo", target)
        attempt = sum(1 for m in messages if m.get("role") == "assistant")
        wrong = [word for word in WRONG_GUESSES if word != target]
        if policy == "format_error":
            return f"I think it is {target}."
        if policy == "lose" or (policy == "win_late" and attempt == 0):
            return f"GUESS: {wrong[attempt % len(wrong)]}"
        return f"GUESS: {target}"

    # wordle ---------------------------------------------------------------------------------

    def _wordle(self, messages: Chat, users: list[str]) -> str:
        last_line = users[0].strip().splitlines()[-1] if users[0].strip() else ""
        clue = last_line[len("clue:"):].strip() if last_line.startswith("clue:") else None
        seen = [found.group(1).strip() for text in users[1:]
                for found in re.finditer(r"guess_feedback:\s*([^\n]+)", text)]
        history = [("".join(token[0] for token in feedback.split()), feedback) for feedback in seen]
        solver = wordle_solver(self.clembench)
        key, probe = solver.identify(history)
        if key is None:
            return f"explanation: a word that splits the remaining candidates well.\nguess: {probe}"
        policy = self.policy("wordle_withclue", clue) if clue is not None else self.policy("wordle", key)
        guessed = {guess for guess, _ in history}
        candidates = [w for w in solver.consistent(history) if w not in guessed]
        unused = next(w for w in solver.pool if w not in guessed)
        if policy == "format_error":
            return f"My next guess is {candidates[0] if candidates else unused}."
        if policy == "rule_break":
            tried = any("guess: qzxjv" in _text(m) for m in messages if m.get("role") == "assistant")
            return f"explanation: trying an unusual word.\nguess: {'star' if tried else 'qzxjv'}"
        if policy == "lose" or not candidates:
            return f"explanation: a word that cannot be the target.\nguess: {unused}"
        return f"explanation: the only word that fits every feedback so far.\nguess: {candidates[0]}"

    # privateshared --------------------------------------------------------------------------

    def _privateshared_texts(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(question, slot) pairs of every experiment's requests and probing questions."""
        with self._lock:
            if self._questions is None or self._probes is None:
                questions: list[tuple[str, str]] = []
                probes: list[tuple[str, str]] = []
                for folder in sorted((self.clembench / "privateshared" / "resources" / "texts").iterdir()):
                    for name, into in (("requests.json", questions), ("probing_questions.json", probes)):
                        path = folder / name
                        if path.exists():
                            for slot, texts in json.loads(path.read_text()).items():
                                into.extend((text, slot) for text in texts)
                self._questions, self._probes = questions, sorted(probes, key=lambda p: -len(p[0]))
            return self._questions, self._probes

    def _privateshared(self, messages: Chat, users: list[str]) -> str:
        prompt = users[0]
        slots = {key.strip().lower(): value.strip()
                 for key, value in re.findall(r"^([A-Z][A-Z-]*):[ \t]*(.+)$", prompt, re.MULTILINE)
                 if key != "WHAT"}
        policy = self.policy("privateshared", digest(prompt))
        said = [_text(m).lower() for m in messages if m.get("role") == "assistant"]
        questions, probes = self._privateshared_texts()
        current = users[-1]
        if current.startswith("ME:"):
            slot = next((s for text, s in probes if text in current and s in slots), None)
            if slot is None:
                self._unknown("privateshared probe", messages)
                return "ASIDE: no"
            told = any(slots[slot].lower() in text for text in said)
            answer = "yes" if told else "no"
            return answer.capitalize() + "." if policy == "format_error" else f"ASIDE: {answer}"
        asked = current.split(": ", 1)[-1].strip()
        slot = next((s for text, s in questions if text == asked and s in slots), None)
        if slot is None:
            self._unknown("privateshared request", messages)
            return "ANSWER: I do not know."
        first_request = len(said) <= 1  # only the game's own "Ok." so far
        if first_request and policy == "lose":
            return "ANSWER: I would rather not tell you yet."
        if first_request and policy == "rule_break":
            return f"ANSWER: {slots[slot]}.\nWhat else do you need?"
        return f"ANSWER: {slots[slot]}."

    # referencegame --------------------------------------------------------------------------

    def _reference_giver(self, messages: Chat, prompt: str) -> str:
        found = re.search(r"Target grid:\s*\n(.*?)\n\s*\nDistractor grid 1:\s*\n(.*?)\n\s*\n"
                          r"Distractor grid 2:\s*\n(.*?)\n\s*\n", prompt, re.DOTALL)
        if not found:
            self._unknown("referencegame grids", messages)
            return "Expression: the target grid."
        grids = [grid_rows(found.group(i)) for i in (1, 2, 3)]
        expression = f"Expression: The grid with rows {grids[0]}."
        if self.policy("referencegame", grids_key(grids[0], grids)) == "rule_break":
            return expression + "\n\nThe two other grids differ from it."
        return expression

    def _reference_follower(self, messages: Chat, prompt: str) -> str:
        found = re.search(r"First:\s*\n(.*?)\n\s*\nSecond:\s*\n(.*?)\n\s*\nThird:\s*\n(.*?)\n\s*\n",
                          prompt, re.DOTALL)
        rows = re.search(r"with rows (\S+?)\.?(?:\s|$)", prompt)
        if not found or not rows:
            self._unknown("referencegame follower", messages)
            return "Answer: first"
        grids = [grid_rows(found.group(i)) for i in (1, 2, 3)]
        target = rows.group(1)
        labels = ("first", "second", "third")
        match = next((label for label, grid in zip(labels, grids) if grid == target), None)
        if match is None:
            self._unknown("referencegame target", messages)
            match = "first"
        policy = self.policy("referencegame", grids_key(target, grids))
        if policy == "lose":
            return f"Answer: {next(label for label, grid in zip(labels, grids) if grid != target)}"
        if policy == "format_error":
            return f"The {match} grid."
        return f"Answer: {match}"


# --- the server ----------------------------------------------------------------------------

class ScriptedClemServer(LoopbackHTTPServer):
    """``/v1/chat/completions`` and ``/v1/models`` on a free loopback port, answering from
    a :class:`ClemScript`; responses have the shape the ``openai`` 2.x client parses."""

    def __init__(self, script: ClemScript | None = None, model: str = MODEL) -> None:
        self.script = script or ClemScript()
        self.model = model
        self.requests_served = 0
        server = self
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, payload: Mapping[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [
                        {"id": server.model, "object": "model", "created": 0, "owned_by": "llmeval-tests"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "the body is not JSON", "type": "invalid_request_error"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                messages = body.get("messages") or []
                content = server.script.reply(messages)
                with lock:
                    server.requests_served += 1
                    number = server.requests_served
                prompt_tokens = sum(len(_text(m).split()) for m in messages)
                completion_tokens = len(content.split())
                choices = [{"index": i, "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop", "logprobs": None}
                           for i in range(int(body.get("n") or 1))]
                self._send(200, {
                    "id": f"chatcmpl-scripted-{number}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model") or server.model,
                    "choices": choices, "system_fingerprint": None,
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens}})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(Handler)
        self.base_url = f"{self.url}/v1"
