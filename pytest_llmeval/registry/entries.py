"""The registry's records, typed: model metadata, deployments and tokenizer configs (HELM's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ObjectSpec:
    """HELM's ``{class_name, args}`` pair naming the class that serves a deployment."""

    class_name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelMetadata:
    """HELM's model record; ``tags`` decide the model groups (``text``, ``code``, ...)."""

    name: str
    display_name: str = ""
    description: str = ""
    creator_organization_name: str = ""
    access: str = "open"
    num_parameters: int | None = None
    release_date: str | None = None
    tags: tuple[str, ...] = ()
    deployment_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TokenizerConfig:
    name: str
    tokenizer_spec: ObjectSpec
    end_of_text_token: str | None = None
    prefix_token: str | None = None


@dataclass(frozen=True)
class ModelDeployment:
    """How to reach one model: the client class, its args and the context limits.

    ``source`` is the file the entry came from, so later errors can point back to it.
    """

    name: str
    model_name: str
    client_spec: ObjectSpec
    tokenizer_name: str | None = None
    max_sequence_length: int | None = None
    max_request_length: int | None = None  # None: max_sequence_length, as in HELM
    max_sequence_and_generated_tokens_length: int | None = None
    window_service_spec: ObjectSpec | None = None
    deprecated: bool = False
    source: str = "<built-in>"
    # clembench entries: where each client option was read (``eos_to_cull`` ->
    # ``model_config.eos_to_cull``), and the entry's model_config keys the client does not use.
    chat: dict[str, str] = field(default_factory=dict)
    unused_options: tuple[str, ...] = ()

    @property
    def host_organization(self) -> str:
        """The part before the first ``/``; credentials are looked up under it."""
        return self.name.split("/", 1)[0]
