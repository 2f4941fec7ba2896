"""What ``llmeval-check-model`` checks and how it tells: the standard conversations, each case's
result, and the report with its verdict and advice (the check itself is :mod:`pytest_llmeval.check`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.requests import Message

PROMPT_START = "---- {label} ----"
PROMPT_END = "---- end ----"

# A ChatML template to start from when a model has none (adjust the markers to its tokens).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class CheckCase:
    """One standard conversation; each ends with a user turn so a generation prompt is due."""

    name: str
    messages: tuple[Message, ...]
    description: str = ""


ALTERNATING = CheckCase(
    "alternating",
    (
        Message("user", "Name the capital of France in one word."),
        Message("assistant", "Paris"),
        Message("user", "Now name the capital of Italy in one word."),
    ),
    "user/assistant/user turns, as every multi-turn eval sends them",
)
TWO_USER_TURNS = CheckCase(
    "two-user-turns",
    (
        Message("user", "Here is the game description: guess the word I think of."),
        Message("user", "Your first guess, please."),
    ),
    "two user turns in a row, as clembench's game master sometimes produces",
)
LEADING_ASSISTANT = CheckCase(
    "leading-assistant",
    (
        Message("assistant", "I am ready to play."),
        Message("user", "Then make your first move."),
    ),
    "a history that opens with the model's own turn",
)
SYSTEM_FIRST = CheckCase(
    "system-first",
    (
        Message("system", "You answer with a single word, no punctuation."),
        Message("user", "What colour is the sky on a clear day?"),
        Message("assistant", "Blue"),
        Message("user", "And the colour of fresh grass?"),
    ),
    "a system message, then user/assistant turns, as HELM's chat scenarios send them",
)
STANDARD_CASES: tuple[CheckCase, ...] = (ALTERNATING, TWO_USER_TURNS, LEADING_ASSISTANT, SYSTEM_FIRST)


@dataclass
class CaseResult:
    """What the template made of one case, as given and as the client sends it (merged)."""

    case: CheckCase
    rendered: str | None = None
    error: str | None = None
    # Set when merging consecutive same-role messages changes the conversation.
    merged_messages: tuple[Message, ...] | None = None
    merged_rendered: str | None = None
    merged_error: str | None = None
    missing: list[str] = field(default_factory=list)
    generation_prompt: str | None = None
    end_of_turn: str | None = None
    eos_after_assistant: bool | None = None

    @property
    def sent_messages(self) -> tuple[Message, ...]:
        """The messages the client actually renders: it always merges same-role runs."""
        return self.merged_messages if self.merged_messages is not None else self.case.messages

    @property
    def sent(self) -> str | None:
        """The prompt the client would send, or None when the template raises on it."""
        return self.merged_rendered if self.merged_messages is not None else self.rendered

    @property
    def sent_error(self) -> str | None:
        return self.merged_error if self.merged_messages is not None else self.error


@dataclass
class CheckReport:
    """Everything the check found, plus the verdict and what to change in the registry."""

    model: str
    deployment: str = ""
    deployment_source: str = ""
    tokenizer_source: str = ""
    tokenizer_class: str = ""
    template_origin: str | None = None
    eos_token: str | None = None
    stop_token_ids: list[int] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    results: list[CaseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def result(self, name: str) -> CaseResult:
        """The result of the case called ``name``."""
        for result in self.results:
            if result.case.name == name:
                return result
        raise KeyError(name)

    def render(self) -> str:
        """A readable report; prompts appear verbatim between ``----`` lines."""
        lines = [
            f"Model check: {self.model}",
            f"  deployment:       {self.deployment} (from {self.deployment_source})",
            f"  tokenizer source: {self.tokenizer_source}",
            f"  tokenizer class:  {self.tokenizer_class}",
            f"  chat template:    {self.template_origin or 'none'}",
            f"  eos token:        {self.eos_token!r} (generation stops at token ids {self.stop_token_ids})",
            "  chat options:     " + ", ".join(f"{k}={v!r}" for k, v in self.options.items()),
        ]
        for number, result in enumerate(self.results, 1):
            lines += ["", f"== case {number}/{len(self.results)}: {result.case.name} "
                          f"({result.case.description})",
                      "   roles: " + ", ".join(m.role for m in result.case.messages)]
            if self.template_origin is None:
                lines.append("   no chat template: the client sends the contents joined by blank lines")
                lines += _prompt_block("prompt the client sends", result.sent, result.sent_error)
            else:
                lines += _prompt_block("rendered prompt", result.rendered, result.error)
            if result.merged_messages is not None and self.template_origin is not None:
                roles = ", ".join(m.role for m in result.merged_messages)
                lines.append(f"   merged as clembench does (and the client does) -> roles: {roles}")
                lines += _prompt_block("rendered prompt after merging", result.merged_rendered,
                                       result.merged_error)
            if result.sent is None:
                lines.append("   not sendable: the template raises on it")
                continue
            lines.append("   every message content present: "
                         + ("yes" if not result.missing else f"NO, missing {result.missing}"))
            lines.append("   generation prompt: " + (f"yes {result.generation_prompt!r}"
                                                     if result.generation_prompt else "NO"))
            if result.eos_after_assistant is not None:
                lines.append(f"   end of assistant turn: {result.end_of_turn!r}; eos token after assistant "
                             f"turns: {'yes' if result.eos_after_assistant else 'no'}")
        lines.append("")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"problem: {p}" for p in self.problems]
        lines += [f"advice: {a}" for a in self.advice]
        if self.passed:
            lines.append(f"PASS: {self.model} renders every standard conversation correctly with its chat "
                         f"template ({self.template_origin})")
        else:
            lines.append(f"FAIL: {self.model}: " + "; ".join(self.problems)
                         + (" (advice above)" if self.advice else ""))
        return "\n".join(lines)


def _prompt_block(label: str, text: str | None, error: str | None) -> list[str]:
    """A prompt verbatim between marker lines, or the error the template raised."""
    if text is None:
        return [f"   {label}: RAISED {error}"]
    body = text if text.endswith("\n") else text + "\n"
    return [PROMPT_START.format(label=label), *body.splitlines(), PROMPT_END]
