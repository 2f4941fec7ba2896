"""Reading an OpenAI-compatible server's choices: text, per-token log-probabilities (chat's
``logprobs.content`` or completions' parallel lists) and the request's stop sequences."""

from __future__ import annotations

from typing import Any

from pytest_llmeval.requests import GeneratedOutput, Request, Token, truncate_at_stop


def completion_of(choice: dict[str, Any], request: Request, api: str) -> GeneratedOutput:
    """One choice of a ``chat`` or ``completions`` answer as a completion: an echoed prompt kept
    apart, the text and its tokens cut at the first stop sequence, the finish reason."""
    if api == "chat":
        message = choice.get("message") or {}
        text = message.get("content") or ""
        tokens = _chat_tokens(choice.get("logprobs"))
    else:
        text = choice.get("text") or ""
        tokens = _completion_tokens(choice.get("logprobs"))
    finish: dict[str, Any] = {"reason": choice.get("finish_reason")}
    prefix = ""
    if api == "completions" and request.echo_prompt and text.startswith(str(request.prompt)):
        prefix, text = str(request.prompt), text[len(str(request.prompt)):]
    cut, hit = truncate_at_stop(text, request.stop_sequences)
    if hit is not None:
        finish = {"reason": "stop", "stop_sequence": hit}
        tokens = _tokens_within(tokens, len(prefix) + len(cut))
    logprob = sum(t.logprob for t in tokens)
    return GeneratedOutput(text=prefix + cut, logprob=logprob, tokens=tokens, finish_reason=finish)


def _chat_tokens(logprobs: Any) -> list[Token]:
    """Tokens from a chat choice's ``logprobs.content``."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    tokens = []
    for item in content or []:
        top = {t["token"]: float(t["logprob"]) for t in item.get("top_logprobs") or [] if "token" in t}
        tokens.append(Token(text=item.get("token", ""), logprob=float(item.get("logprob") or 0.0),
                            top_logprobs=top))
    return tokens


def _completion_tokens(logprobs: Any) -> list[Token]:
    """Tokens from a completions choice's ``logprobs`` (parallel lists)."""
    if not isinstance(logprobs, dict):
        return []
    texts = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    tokens = []
    for i, text in enumerate(texts):
        value = values[i] if i < len(values) else None  # the first echoed token has no logprob
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        tokens.append(Token(text=text, logprob=float(value or 0.0),
                            top_logprobs={k: float(v) for k, v in top.items()}))
    return tokens


def _tokens_within(tokens: list[Token], length: int) -> list[Token]:
    """The leading tokens whose text fits in the first ``length`` characters."""
    kept, used = [], 0
    for token in tokens:
        used += len(token.text)
        if used > length:
            break
        kept.append(token)
    return kept
