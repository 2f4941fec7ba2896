"""Reading registry files: HELM's three YAML files and clembench's ``model_registry.json``.

Built-in files come first; a local directory (HELM's ``prod_env/``) adds entries and
overrides built-in ones of the same name. Every file is checked against its JSON Schema and
any problem is raised as one :class:`ConfigError` naming the file, the entry and the field.
clembench's file is read as clemcore reads it (:mod:`pytest_llmeval.registry.clemcore_entries`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_llmeval.registry.clemcore_entries import (
    CLEMBENCH_BACKENDS,
    CLEMCORE_CLIENT,
    _parse_context_size,
    check_backend,
    load_clembench,
    unifies,
)
from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata, ObjectSpec, TokenizerConfig
from pytest_llmeval.validation import registry_schemas as schemas
from pytest_llmeval.validation.validator import check, read_document

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "registries"

METADATA_FILE = "model_metadata.yaml"
DEPLOYMENTS_FILE = "model_deployments.yaml"
TOKENIZERS_FILE = "tokenizer_configs.yaml"
CLEMBENCH_FILE = "model_registry.json"


def read_structured(path: Path) -> Any:
    """Parse a YAML or JSON file, turning syntax errors into a :class:`ConfigError`."""
    return read_document(path)


def validate(document: Any, schema: dict[str, Any], path: Path) -> None:
    """Raise the first schema violation as a :class:`ConfigError` with entry and field."""
    check(document, schema, path)


def _object_spec(raw: dict[str, Any]) -> ObjectSpec:
    return ObjectSpec(class_name=raw["class_name"].strip(), args=dict(raw.get("args") or {}))


def load_metadata(path: Path) -> list[ModelMetadata]:
    document = read_structured(path)
    validate(document, schemas.MODEL_METADATA, path)
    return [
        ModelMetadata(
            name=m["name"], display_name=m.get("display_name", m["name"]),
            description=m.get("description", ""),
            creator_organization_name=m.get("creator_organization_name", ""),
            access=m.get("access", "open"), num_parameters=m.get("num_parameters"),
            release_date=str(m["release_date"]) if m.get("release_date") is not None else None,
            tags=tuple(m.get("tags") or ()),
            deployment_names=tuple(m["deployment_names"]) if m.get("deployment_names") is not None else None,
        )
        for m in document["models"]
    ]


def load_deployments(path: Path) -> list[ModelDeployment]:
    document = read_structured(path)
    validate(document, schemas.MODEL_DEPLOYMENTS, path)
    return [
        ModelDeployment(
            name=d["name"], model_name=d.get("model_name", d["name"]),
            client_spec=_object_spec(d["client_spec"]), tokenizer_name=d.get("tokenizer_name"),
            max_sequence_length=d.get("max_sequence_length"),
            max_request_length=d.get("max_request_length"),
            max_sequence_and_generated_tokens_length=d.get("max_sequence_and_generated_tokens_length"),
            window_service_spec=_object_spec(d["window_service_spec"]) if d.get("window_service_spec") else None,
            deprecated=bool(d.get("deprecated", False)), source=str(path),
        )
        for d in document["model_deployments"]
    ]


def load_tokenizers(path: Path) -> list[TokenizerConfig]:
    document = read_structured(path)
    validate(document, schemas.TOKENIZER_CONFIGS, path)
    return [
        TokenizerConfig(
            name=t["name"], tokenizer_spec=_object_spec(t["tokenizer_spec"]),
            end_of_text_token=t.get("end_of_text_token"), prefix_token=t.get("prefix_token"),
        )
        for t in document["tokenizer_configs"]
    ]


def registry_files(directories: Iterable[Path]) -> list[Path]:
    """All registry files that exist in ``directories``, in override order."""
    names = (METADATA_FILE, DEPLOYMENTS_FILE, TOKENIZERS_FILE, CLEMBENCH_FILE)
    return [d / n for d in directories for n in names if (d / n).is_file()]


__all__ = [
    "CLEMBENCH_BACKENDS", "CLEMBENCH_FILE", "CLEMCORE_CLIENT", "_parse_context_size", "check_backend",
    "load_clembench", "load_deployments", "load_metadata", "load_tokenizers", "registry_files", "unifies",
]
