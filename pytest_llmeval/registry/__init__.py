"""Model registries: HELM's YAML files and clembench's JSON, merged and validated."""

from __future__ import annotations

from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata, ObjectSpec, TokenizerConfig
from pytest_llmeval.registry.registry import DEFAULT_MODEL, Registry

__all__ = ["DEFAULT_MODEL", "ModelDeployment", "ModelMetadata", "ObjectSpec", "Registry", "TokenizerConfig"]
