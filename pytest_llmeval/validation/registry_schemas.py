"""JSON Schemas for the registry files: HELM's three YAML files and clembench's ``model_registry.json``.

The keys are those of HELM's dataclasses (``ModelDeployment``, ``ModelMetadata``,
``TokenizerConfig``) and clembench's model specs, plus keys their own shipped files use
(``client_spec.deployment`` in HELM, ``model_config`` and the descriptive keys in clembench).
Any other key is reported as a warning with the closest known one, since both projects ignore
unknown keys and a typo would otherwise go unnoticed.
"""

from __future__ import annotations

from typing import Any

_POSITIVE_INT = {"type": "integer", "minimum": 1}
_NULLABLE_STRING = {"type": ["string", "null"]}
_NAME = {"type": "string", "minLength": 1}


# HELM's ObjectSpec: ``{class_name, args}``.
_OBJECT_SPEC = {
    "type": "object",
    "required": ["class_name"],
    "properties": {"class_name": _NAME, "args": {"type": ["object", "null"]}},
    "warnUnknown": "typos",
}


def _entries(section: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [section],
        "properties": {section: {"type": "array", "items": item}},
        "warnUnknown": "typos",
    }


MODEL_METADATA = _entries("models", {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": _NAME,
        "display_name": {"type": "string"},
        "description": {"type": "string"},
        "creator_organization_name": {"type": "string"},
        "access": {"enum": ["open", "limited", "closed"]},
        "num_parameters": {"type": ["integer", "null"], "minimum": 0},
        "release_date": _NULLABLE_STRING,
        "tags": {"type": "array", "items": {"type": "string"}},
        "deployment_names": {"type": ["array", "null"], "items": {"type": "string"}},
    },
    "warnUnknown": "typos",
})

MODEL_DEPLOYMENTS = _entries("model_deployments", {
    "type": "object",
    "required": ["name", "client_spec"],
    "properties": {
        "name": _NAME,
        "model_name": _NAME,
        "tokenizer_name": _NULLABLE_STRING,
        "max_sequence_length": _POSITIVE_INT,
        "max_request_length": _POSITIVE_INT,
        "max_sequence_and_generated_tokens_length": _POSITIVE_INT,
        "client_spec": _OBJECT_SPEC,
        "window_service_spec": {**_OBJECT_SPEC, "type": ["object", "null"]},
        "deprecated": {"type": "boolean"},
    },
    "warnUnknown": "typos",
    "belongsUnder": {"args": "client_spec", "class_name": "client_spec"},
})

TOKENIZER_CONFIGS = _entries("tokenizer_configs", {
    "type": "object",
    "required": ["name", "tokenizer_spec"],
    "properties": {
        "name": _NAME,
        "tokenizer_spec": _OBJECT_SPEC,
        "end_of_text_token": _NULLABLE_STRING,
        "prefix_token": _NULLABLE_STRING,
    },
    "warnUnknown": "typos",
    "belongsUnder": {"args": "tokenizer_spec", "class_name": "tokenizer_spec"},
})

# clemcore's model_config: the keys its backends read that this plugin's clients use are typed;
# the many others (padding_side, cot_*, multimodality, ...) are clemcore's to judge.
_MODEL_CONFIG = {
    "type": "object",
    "properties": {
        "premade_chat_template": {"type": "boolean"},
        "custom_chat_template": _NULLABLE_STRING,
        "eos_to_cull": _NULLABLE_STRING,
        "output_split_prefix": _NULLABLE_STRING,
        "slow_tokenizer": {"type": "boolean"},
        "trust_remote_code": {"type": "boolean"},
        "attn_implementation": {"type": "string"},
        "load_in_8bit": {"type": "boolean"},
        "load_in_4bit": {"type": "boolean"},
        "requires_api_key": {"type": "boolean"},
        "extra_body": {"type": "object"},
    },
}

CLEMBENCH_REGISTRY: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["model_name", "backend"],
        "properties": {
            "model_name": _NAME,
            "backend": _NAME,
            "huggingface_id": {"type": "string"},
            "model_id": {"type": "string"},
            "premade_chat_template": {"type": "boolean"},
            "custom_chat_template": _NULLABLE_STRING,
            "eos_to_cull": _NULLABLE_STRING,
            "output_split_prefix": _NULLABLE_STRING,
            "slow_tokenizer": {"type": "boolean"},
            "requires_api_key": {"type": "boolean"},
            "context_size": {"type": ["integer", "string", "null"],
                             "errorMessage": "is not a size such as 4096, \"128k\" or \"4M\""},
            "model_config": _MODEL_CONFIG,
            "lookup_source": {"type": "string"},  # written by clemcore's `clem register`
            # Descriptive keys of clemcore's own registry, and the slurk backend's settings.
            "release_date": {}, "open_weight": {}, "parameters": {}, "languages": {}, "license": {},
            "response_timeout": {}, "join_timeout": {}, "bot_name": {}, "room_layout_path": {},
        },
        "warnUnknown": True,
    },
}
