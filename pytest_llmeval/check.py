"""``llmeval-check-model``: does a model's chat template work for evaluations? (like clembench's
``initial_hf_check.py``).

A badly fitting chat template does not crash an evaluation; it quietly lowers every score. So
before a new Hugging Face model is added to a registry, this renders a few standard
conversations through exactly the tokenizer and chat options the Hugging Face client would use,
shows the prompts verbatim, and says what to set in the registry entry when something is off.
Only the tokenizer is loaded, never the weights, so the check takes seconds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.check_cases import (
    ALTERNATING,
    CHATML_TEMPLATE,
    LEADING_ASSISTANT,
    STANDARD_CASES,
    SYSTEM_FIRST,
    TWO_USER_TURNS,
    CaseResult,
    CheckCase,
    CheckReport,
)
from pytest_llmeval.clients import factory, hf_chat, hf_loading
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry import ModelDeployment, Registry
from pytest_llmeval.requests import Message, Request

# --- the check ---------------------------------------------------------------------------------


def check_model(deployment_name_or_hf_id: str, local_path: Path | None = None) -> CheckReport:
    """Render the standard cases through the deployment's tokenizer and judge the template."""
    registry = Registry.load(local_path)
    deployment = registry.deployment(deployment_name_or_hf_id)
    client = factory.local_chat_client(deployment)
    tokenizer = _load_tokenizer(client, deployment)

    report = CheckReport(model=deployment_name_or_hf_id, deployment=deployment.name,
                         deployment_source=deployment.source)
    source = client.source
    where = f"{source.path}" + (f" (GGUF {source.gguf_file}, tokenizer read from the converted copy "
                                f"{hf_loading.loadable_path(source)})" if source.gguf_file else "")
    pretrained = deployment.client_spec.args.get("pretrained_model_name_or_path", deployment.model_name)
    report.tokenizer_source = where if pretrained == source.path else f"{pretrained} -> {where}"
    report.tokenizer_class = type(tokenizer).__name__
    if client.custom_chat_template:
        report.template_origin = "custom_chat_template from the registry entry"
    elif getattr(tokenizer, "chat_template", None):
        report.template_origin = "the tokenizer's own"
    report.eos_token = tokenizer.eos_token
    report.stop_token_ids = sorted(client.stop_token_ids())
    report.options = {
        "custom_chat_template": "set" if client.custom_chat_template else None,
        "slow_tokenizer": client.slow_tokenizer,
        "apply_chat_template": client.apply_chat_template,
        "eos_to_cull": client.eos_to_cull.pattern if client.eos_to_cull else None,
        "output_split_prefix": client.output_split_prefix,
    }
    report.notes += _registry_notes(deployment)
    for case in STANDARD_CASES:
        report.results.append(_run_case(client, tokenizer, deployment.name, case))
    _judge(report, client, tokenizer)
    return report


def _registry_notes(deployment: ModelDeployment) -> list[str]:
    """For a clembench entry: which of its options reach the client, read where, and which not."""
    notes = []
    if deployment.chat:
        args = deployment.client_spec.args
        read = ", ".join(f"{option}={args.get(option)!r} (from {where})" for option, where in deployment.chat.items())
        notes.append(f"the registry entry's options reaching the client: {read}")
    if deployment.unused_options:
        notes.append("the registry entry's keys this client does not use: " + ", ".join(deployment.unused_options))
    return notes


def _load_tokenizer(client: Any, deployment: ModelDeployment) -> Any:
    """The client's tokenizer; any loading failure becomes a one-line ConfigError."""
    try:
        return client.tokenizer
    except ConfigError:
        raise
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot load the tokenizer from {client.source.path!r}: {first_line}",
                          file=deployment.source, entry=deployment.name,
                          field="client_spec.args.pretrained_model_name_or_path") from exc


def _attempt(render: Callable[[], str]) -> tuple[str | None, str | None]:
    """(prompt, None), or (None, the error) when the template raises."""
    try:
        return render(), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {str(exc).strip()}"


def _run_case(client: Any, tokenizer: Any, deployment: str, case: CheckCase) -> CaseResult:
    """Render one case as the client sends it (merged by role) and, where that differs, as given."""
    result = CaseResult(case=case)
    merged = tuple(hf_chat.merge_same_role(case.messages))
    sent = _attempt(lambda: str(client.render(Request(model_deployment=deployment, messages=case.messages))))
    if not hf_chat.chat_template(tokenizer, client.custom_chat_template):
        result.error = "no chat template: the client would join the messages with blank lines"
        result.merged_messages = merged
        result.merged_rendered, result.merged_error = sent
    elif merged == case.messages:
        result.rendered, result.error = sent
    else:
        result.rendered, result.error = _attempt(
            lambda: hf_chat.apply_template(tokenizer, case.messages, client.custom_chat_template))
        result.merged_messages = merged
        result.merged_rendered, result.merged_error = sent
    text = result.sent
    if text is None:
        return result
    result.missing = [m.content for m in case.messages if m.content not in text]
    result.generation_prompt, result.end_of_turn, result.eos_after_assistant = _layout(
        text, result.sent_messages, tokenizer)
    return result


def _layout(text: str, messages: Sequence[Message], tokenizer: Any) -> tuple[str, str | None, bool | None]:
    """Generation prompt (text after the last content), assistant end-of-turn marker, eos after it."""
    spans: list[tuple[int, int] | None] = []
    position = 0
    for message in messages:
        start = text.find(message.content, position)
        if start < 0:
            spans.append(None)
            continue
        spans.append((start, start + len(message.content)))
        position = start + len(message.content)
    last = spans[-1]
    generation_prompt = text[last[1]:] if last is not None else ""
    eos = tokenizer.eos_token
    specials = sorted({*getattr(tokenizer, "all_special_tokens", []), *tokenizer.get_added_vocab()},
                      key=len, reverse=True)
    end_of_turn: str | None = None
    eos_after: bool | None = None
    for index, message in enumerate(messages):
        span = spans[index]
        if message.role != "assistant" or span is None:
            continue
        following = next((s for s in spans[index + 1:] if s is not None), None)
        after = text[span[1]:following[0] if following else len(text)]
        end_of_turn = _leading_marker(after, specials)
        found = bool(eos) and eos in after
        eos_after = found if eos_after is None else eos_after and found
    return generation_prompt, end_of_turn, eos_after


def _leading_marker(after: str, specials: Sequence[str]) -> str | None:
    """The token that closes a turn: a special token if one leads, else the text up to a newline."""
    stripped = after.lstrip(" ")
    for token in specials:
        if token and stripped.startswith(token):
            return token
    head = stripped.split("\n", 1)[0].strip()
    return head or None


def _judge(report: CheckReport, client: Any, tokenizer: Any) -> None:
    """Turn the case results into problems (FAIL), notes, and concrete registry advice."""
    if report.template_origin is None:
        report.problems.append("the tokenizer has no chat template (chat messages would be sent joined by "
                               "blank lines, with no role markers and no generation prompt)")
        report.advice.append(
            "set `custom_chat_template` in the registry entry (under model_config in clembench's "
            "model_registry.json, or client_spec.args in model_deployments.yaml) to a Jinja template using "
            "the model's own turn "
            f"markers, for example ChatML: {json.dumps(CHATML_TEMPLATE)}")
        report.advice.append("or, for a base model evaluated on plain prompts, set the deployment arg "
                             "`apply_chat_template: false` (clemcore always renders a chat template, so a "
                             "clembench entry needs a `custom_chat_template`)")
        return
    template_fix = ("set `custom_chat_template` in the registry entry to a template that renders "
                    "user/assistant/system turns")
    alternating = report.result(ALTERNATING.name)
    if alternating.sent is None:
        report.problems.append(f"the template raises on plain alternating turns ({alternating.sent_error})")
        report.advice.append(template_fix)
    elif alternating.missing:
        report.problems.append(f"the template drops message text {alternating.missing}")
        report.advice.append(template_fix)

    two_user = report.result(TWO_USER_TURNS.name)
    if two_user.sent is None:
        report.problems.append(f"the template raises on two user turns even after merging "
                               f"({two_user.sent_error})")
        report.advice.append(template_fix)
    elif two_user.error is not None:
        report.notes.append(f"the template raises on two user turns in a row ({two_user.error}); that is "
                            "fine: clembench merges consecutive same-role messages and so does this client, "
                            "and the merged conversation renders")
    else:
        report.notes.append("two user turns in a row are merged into one before rendering, as clembench does")

    leading = report.result(LEADING_ASSISTANT.name)
    if leading.sent is None:
        report.notes.append(f"the template raises on a conversation that opens with an assistant turn "
                            f"({leading.sent_error}); histories must start with a user (or system) turn. "
                            "clembench's game masters always open with a user turn, so this only matters for "
                            "custom evals that start with the model's own turn")

    system = report.result(SYSTEM_FIRST.name)
    system_text = SYSTEM_FIRST.messages[0].content
    if system.sent is None or system_text in system.missing:
        how = f"raises: {system.sent_error}" if system.sent is None else "silently drops the system message"
        report.problems.append(f"the system role is unsupported (the template {how})")
        report.advice.append(
            "system messages must be merged into the first user turn for this model: the client does not "
            "do it, so set `custom_chat_template` to a template that prepends the system content to the "
            "first user message, or keep system prompts out of the evals run on this model")

    sendable = [r for r in report.results if r.sent is not None and r.case is not LEADING_ASSISTANT]
    if any(not r.generation_prompt or not r.generation_prompt.strip() for r in sendable):
        report.problems.append("the rendered prompt does not end with a generation prompt (nothing follows "
                               "the last user message), so the model would continue the user's turn")
        report.advice.append("set `custom_chat_template` to a template that appends the assistant header "
                             "when add_generation_prompt is true")
    if client.output_split_prefix:
        in_prompt = any(r.generation_prompt and client.output_split_prefix in r.generation_prompt
                        for r in sendable)
        report.notes.append(f"output_split_prefix {client.output_split_prefix!r} "
                            + ("appears in the generation prompt" if in_prompt else
                               "does not appear in the generation prompt; outputs are split on it only "
                               "if the model writes it"))
    _judge_eos(report, client, tokenizer)


def _judge_eos(report: CheckReport, client: Any, tokenizer: Any) -> None:
    """Will generation stop where an assistant turn ends, and leave no marker in the output?"""
    turns = [r for r in report.results if r.eos_after_assistant is not None]
    if not turns:
        return
    marker = next((r.end_of_turn for r in turns if r.end_of_turn), None)
    eos = report.eos_token
    if all(r.eos_after_assistant for r in turns):
        report.notes.append(f"assistant turns end with the eos token {eos!r}, so generation stops where the "
                            "model ends its turn")
        return
    if marker is None:
        report.notes.append("assistant turns end with no marker at all; generation can only stop at the eos "
                            f"token {eos!r}, stop sequences or max_tokens")
        return
    marker_id = tokenizer.get_vocab().get(marker)
    if marker_id is not None and marker_id in report.stop_token_ids:
        report.notes.append(f"assistant turns end with {marker!r}, not the eos token {eos!r}, but "
                            "generation_config lists it as an eos id, so generation stops there")
        return
    if client.eos_to_cull is not None and client.eos_to_cull.search(marker):
        report.notes.append(f"assistant turns end with {marker!r}, which does not stop generation, but "
                            f"eos_to_cull {client.eos_to_cull.pattern!r} culls it from outputs")
        return
    report.problems.append(f"assistant turns end with {marker!r}, not the eos token {eos!r}: generation does "
                           f"not stop there, so {marker!r} (and whatever follows) would appear in outputs")
    pattern = json.dumps("(?s)" + re.escape(marker) + ".*")
    report.advice.append(f"set `eos_to_cull: {pattern}` in the registry entry (clembench's key, under "
                         "model_config; client_spec.args in model_deployments.yaml)")


# --- console script ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``llmeval-check-model MODEL``: print the report; exit 0 on pass, 1 on fail, 2 on bad config."""
    parser = argparse.ArgumentParser(
        prog="llmeval-check-model",
        description="Check a Hugging Face model's chat template and end-of-turn token before adding it "
                    "to a registry (loads the tokenizer only, never the weights).")
    parser.add_argument("model", help="a deployment name (local/smollm2-135m-instruct), "
                                      "huggingface/<org>/<repo>, or a local model folder")
    parser.add_argument("--local-path", default="prod_env", type=Path,
                        help="folder with local registry files (default: prod_env)")
    args = parser.parse_args(argv)
    try:
        report = check_model(args.model, args.local_path)
    except ConfigError as exc:
        message = " ".join(str(exc).split())
        print(f"llmeval-check-model: error: {message}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
