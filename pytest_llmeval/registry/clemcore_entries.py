"""clembench's ``model_registry.json``, read as clemcore 3.7.2 reads it.

- **Chat options** live under ``model_config`` (clemcore's huggingface_local backend reads them
  only there); files written before clemcore put them at the top level, which is read too. When
  both hold a key, ``model_config`` wins (it is what clemcore uses) and the top-level value is
  reported as ignored. As in clemcore, ``custom_chat_template`` counts only when
  ``premade_chat_template`` is false, and a false one without a custom template still renders the
  tokenizer's own template.
- **context_size** is read as clemcore's ``_parse_context_size`` reads it: a whole number, or
  digits with ``k`` or ``M`` (times 1024 and 1024 squared, any case, surrounding spaces
  allowed); ``""``, ``null`` or no key mean unknown. clemcore silently ignores any other value;
  here it is a one-line error, since the entry then has no context size.
- **Duplicate names**: a name or partial spec selects the first entry that unifies with it
  (clemcore's ``get_first_model_spec_that_unify_with``); the local file's entries precede the
  built-in ones, as clemcore lists the working directory's file before its packaged one.
- **Backends**: ``huggingface_local`` runs on this plugin's Hugging Face client, ``openai``,
  ``openai_compatible`` (and clembench's older ``generic_openai_compatible``) and ``vllm`` (a vLLM
  server's OpenAI API) on its OpenAI-compatible client. Every other backend loads unchanged
  and, when used, runs on clemcore's own backend code (:mod:`pytest_llmeval.clients.clemcore_backend`).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, ConfigWarning
from pytest_llmeval.registry.entries import ModelDeployment, ObjectSpec
from pytest_llmeval.validation import registry_schemas as schemas
from pytest_llmeval.validation.validator import check, read_document

HF_CLIENT = "pytest_llmeval.clients.HuggingFaceClient"
OPENAI_CLIENT = "pytest_llmeval.clients.OpenAICompatibleClient"
CLEMCORE_CLIENT = "pytest_llmeval.clients.ClemcoreBackendClient"

# clembench backends this plugin serves with its own clients.
CLEMBENCH_BACKENDS = {
    "huggingface_local": HF_CLIENT,
    "openai": OPENAI_CLIENT,
    "openai_compatible": OPENAI_CLIENT,
    "generic_openai_compatible": OPENAI_CLIENT,
    "vllm": OPENAI_CLIENT,
}
# huggingface_local options the Hugging Face client takes under the same name.
HF_OPTIONS = ("premade_chat_template", "custom_chat_template", "eos_to_cull", "output_split_prefix",
              "slow_tokenizer", "trust_remote_code", "attn_implementation")
# clemcore's bitsandbytes switches, as the client's ``quantization``.
HF_QUANTIZATION = {"load_in_8bit": "8bit", "load_in_4bit": "4bit"}
# model_config keys of clemcore's OpenAI backends that the OpenAI-compatible client honours.
OPENAI_OPTIONS = ("extra_body", "reasoning_model")

_SIZE = re.compile(r"(\d+)([km])?")
_FACTORS = {None: 1, "k": 1024, "m": 1024 * 1024}


def load_clembench(path: Path) -> list[tuple[dict[str, Any], ModelDeployment]]:
    """Read a clembench registry, in file order; each entry keeps its raw dict for partial-spec
    unification."""
    document = read_document(path)
    check(document, schemas.CLEMBENCH_REGISTRY, path)
    return [(raw, _deployment(raw, path, f"#{index} ({raw['model_name']!r})")) for index, raw in enumerate(document)]


def _deployment(raw: dict[str, Any], path: Path, entry: str) -> ModelDeployment:
    backend = raw["backend"]
    try:
        context = _parse_context_size(raw.get("context_size"))
    except ValueError:
        raise ConfigError(f"{raw['context_size']!r} is not a size clemcore reads: a whole number such as 4096, "
                          f"or digits with k or M such as \"128k\" or \"4M\" (\"\" or null: unknown)",
                          file=path, entry=entry, field="context_size") from None
    config = raw.get("model_config") or {}
    sources: dict[str, str] = {}
    if backend == "huggingface_local":
        class_name = HF_CLIENT
        args, sources, unused = _huggingface(raw, config, path, entry)
    elif backend in CLEMBENCH_BACKENDS:
        class_name = OPENAI_CLIENT
        args, sources, unused = _openai(raw, config)
    else:
        class_name = CLEMCORE_CLIENT
        # The spec clemcore's own lookup would hand its backend (it adds ``lookup_source``).
        args = {"backend": backend, "model_spec": {**raw, "lookup_source": raw.get("lookup_source", str(path))}}
        unused = []
    return ModelDeployment(
        name=raw["model_name"], model_name=raw["model_name"], client_spec=ObjectSpec(class_name=class_name, args=args),
        max_sequence_length=context, source=str(path), chat=sources, unused_options=tuple(unused),
    )


def _huggingface(raw: dict[str, Any], config: dict[str, Any], path: Path,
                 entry: str) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The Hugging Face client's arguments, where each was read, and the keys it does not use."""
    if "huggingface_id" not in raw:
        raise ConfigError("is required for the huggingface_local backend", file=path, entry=entry,
                          field="huggingface_id")
    args: dict[str, Any] = {"pretrained_model_name_or_path": raw["huggingface_id"]}
    sources: dict[str, str] = {}
    unused: list[str] = []
    for key in HF_OPTIONS:
        if key in config:
            args[key], sources[key] = config[key], f"model_config.{key}"
            if key in raw and raw[key] != config[key]:
                _warn(f"is ignored: clemcore reads model_config.{key} ({config[key]!r})", path, entry, key)
        elif key in raw:
            args[key], sources[key] = raw[key], key
    if args.get("premade_chat_template") and "custom_chat_template" in args:
        # clemcore sets a custom template only on a model without a premade one.
        del args["custom_chat_template"]
        unused.append(f"{sources.pop('custom_chat_template')} (premade_chat_template is true)")
    elif args.get("premade_chat_template") is False and "custom_chat_template" not in args:
        # Without a custom template clemcore still renders the tokenizer's own one (it only logs
        # that a generic template is used); the client's premade_chat_template=False would send none.
        del args["premade_chat_template"]
        unused.append(f"{sources.pop('premade_chat_template')} (false without a custom_chat_template: clemcore "
                      f"renders the tokenizer's own template)")
    for key, mode in HF_QUANTIZATION.items():
        if config.get(key):
            args["quantization"], sources["quantization"] = mode, f"model_config.{key}"
    unused += [f"model_config.{key}" for key in config if key not in HF_OPTIONS and key not in HF_QUANTIZATION]
    return args, sources, unused


def _openai(raw: dict[str, Any], config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """The OpenAI-compatible client's arguments (clemcore sends ``model_id``; a vLLM server
    serves a model under its Hugging Face id), where they were read, and the keys it does not use."""
    backend = raw["backend"]
    served = raw.get("model_id") or (raw.get("huggingface_id") if backend == "vllm" else None)
    args: dict[str, Any] = {"model": served or raw["model_name"], "backend": backend}
    extra_body = dict(config.get("extra_body") or {})
    if "reasoning_model" in config:
        extra_body["max_tokens"] = None  # clemcore drops max_tokens for reasoning models
    if extra_body:
        args["extra_body"] = extra_body
    read = [f"model_config.{key}" for key in OPENAI_OPTIONS if key in config]
    sources = {"extra_body": " and ".join(read)} if extra_body else {}
    return args, sources, [f"model_config.{key}" for key in config if key not in OPENAI_OPTIONS]


def _warn(message: str, path: Path, entry: str, field: str) -> None:
    """A one-line ConfigWarning told at the user's file, as the schema check tells unknown keys."""
    warning = ConfigWarning(str(ConfigError(message, file=path, entry=entry, field=field)))
    warnings.warn_explicit(warning, ConfigWarning, filename=str(path), lineno=0)


def check_backend(raw: dict[str, Any], deployment: ModelDeployment) -> None:
    """A selected entry needs a backend this plugin or clemcore serves; the error names ``backend``."""
    backend = raw["backend"]
    if backend in CLEMBENCH_BACKENDS:
        return
    from pytest_llmeval.clients.clemcore_backend import CLEMCORE_HINT, clemcore_backends, clemcore_version

    served = clemcore_backends()
    if served is None:
        message = (f"backend {backend!r} runs on clemcore's own backend code, which is not installed "
                   f"({CLEMCORE_HINT})")
    elif backend not in served:
        message = (f"unknown backend {backend!r}: neither pytest-llmeval ({', '.join(CLEMBENCH_BACKENDS)}) nor "
                   f"clemcore {clemcore_version()} ({', '.join(served)}) serves it (clemcore also loads a "
                   f"backend file {backend}_api.py from the current directory)")
    else:
        return
    raise ConfigError(message, file=deployment.source, entry=raw["model_name"], field="backend")


def _parse_context_size(value: Any) -> int | None:
    """clemcore's reading of ``context_size`` (``huggingface_local_api._parse_context_size``):
    ``4096``, ``"4096"``, ``"128k"``, ``"4M"``; ``None`` for unknown (``""``, null). Raises
    ValueError where clemcore would find no size (``"1.5k"``, ``"lots"``, ``0``, ``4096.0``)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(value)
        return value
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip().lower()
    if not text:
        return None
    match = _SIZE.fullmatch(text)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(value)
    return int(match.group(1)) * _FACTORS[match.group(2)]


def unifies(spec: dict[str, Any], entry: dict[str, Any]) -> bool:
    """clembench's rule: no key present in both may disagree (nested dicts recursively)."""
    for key, value in spec.items():
        if key not in entry:
            continue
        other = entry[key]
        if isinstance(value, dict) and isinstance(other, dict):
            if not unifies(value, other):
                return False
        elif value != other:
            return False
    return True
