"""The merged registry: which models exist, how to reach them, and how users select them."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry import loader
from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata, ObjectSpec, TokenizerConfig

DEFAULT_MODEL = "local/smollm2-135m-instruct"
HF_CLIENT = "pytest_llmeval.clients.HuggingFaceClient"
HF_PREFIX = "huggingface/"


@dataclass
class Registry:
    """Models, deployments and tokenizers by name, built-in first and local overrides last."""

    metadata: dict[str, ModelMetadata] = field(default_factory=dict)
    deployments: dict[str, ModelDeployment] = field(default_factory=dict)
    tokenizers: dict[str, TokenizerConfig] = field(default_factory=dict)
    clembench: list[tuple[dict[str, Any], ModelDeployment]] = field(default_factory=list)

    @classmethod
    def load(cls, local_path: Path | None = None, builtin_dir: Path = loader.BUILTIN_DIR) -> Registry:
        registry = cls()
        directories = [builtin_dir] + ([local_path] if local_path is not None else [])
        for path in loader.registry_files(directories):
            registry._add_file(path)
        registry._check_tokenizer_names()
        return registry

    def _check_tokenizer_names(self) -> None:
        """A ``tokenizer_name`` must name a tokenizer config, unless the client brings its own.

        A local Hugging Face deployment (also HELM's ``huggingface/...`` entries) tokenizes with
        its checkpoint's tokenizer when no config names it; any other client has no tokenizer.
        """
        from pytest_llmeval.clients.factory import HF, backend_of

        for deployment in self.deployments.values():
            name = deployment.tokenizer_name
            if not name or name in self.tokenizers:
                continue
            if backend_of(deployment) == HF:
                continue
            close = difflib.get_close_matches(name, list(self.tokenizers), n=1)
            hint = f"; did you mean {close[0]}?" if close else " (add it to tokenizer_configs.yaml)"
            raise ConfigError(f"no tokenizer config defines {name!r}{hint}", file=deployment.source,
                              entry=deployment.name, field="tokenizer_name")

    def _add_file(self, path: Path) -> None:
        if path.name == loader.METADATA_FILE:
            self.metadata.update((m.name, m) for m in loader.load_metadata(path))
        elif path.name == loader.DEPLOYMENTS_FILE:
            self.deployments.update((d.name, d) for d in loader.load_deployments(path))
        elif path.name == loader.TOKENIZERS_FILE:
            self.tokenizers.update((t.name, t) for t in loader.load_tokenizers(path))
        elif path.name == loader.CLEMBENCH_FILE:
            # A later file's entries come first: local overrides win the unification race.
            self.clembench[:0] = loader.load_clembench(path)

    # --- lookup ---------------------------------------------------------------------------

    def deployment(self, name: str) -> ModelDeployment:
        """The deployment for a name, a model name, a clembench spec or an on-the-fly HF id."""
        if name in self.deployments:
            return self.deployments[name]
        for deployment in self.deployments.values():
            if deployment.model_name == name and not deployment.deprecated:
                return deployment
        for raw, deployment in self.clembench:
            if raw["model_name"] == name:
                loader.check_backend(raw, deployment)
                return deployment
        if name.lstrip().startswith("{"):
            return self._clembench_spec(name)
        on_the_fly = self._on_the_fly(name)
        if on_the_fly is not None:
            return on_the_fly
        known = ", ".join(sorted(self.deployments)[:12])
        raise ConfigError(
            f"unknown model {name!r}. Known deployments include: {known}. Use "
            f"'huggingface/<org>/<repo>' or a local checkpoint path for a model with no registry entry.",
            field="--llmeval-models",
        )

    def _clembench_spec(self, text: str) -> ModelDeployment:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model spec {text!r} is not valid JSON: {exc}",
                              field="--llmeval-models") from exc
        for raw, deployment in self.clembench:
            if loader.unifies(spec, raw):
                loader.check_backend(raw, deployment)
                return deployment
        raise ConfigError(f"no clembench registry entry unifies with {text}", field="--llmeval-models")

    def _on_the_fly(self, name: str) -> ModelDeployment | None:
        """Like HELM's deployment generators: a hub id or a checkpoint folder needs no file."""
        if name.startswith(HF_PREFIX):
            target = name[len(HF_PREFIX):]
        elif Path(name).expanduser().is_dir():
            target = str(Path(name).expanduser().resolve())
        else:
            return None
        return ModelDeployment(
            name=name, model_name=target, tokenizer_name=target,
            client_spec=ObjectSpec(HF_CLIENT, {"pretrained_model_name_or_path": target}),
            source="<generated>",
        )

    def default_deployment(self, model_name: str) -> str | None:
        """HELM's default deployment of a model (``get_default_model_deployment_for_model``):
        the last one that is not deprecated, else the last one; None when none serves it."""
        serving = [d for d in self.deployments.values() if d.model_name == model_name]
        current = [d for d in serving if not d.deprecated]
        chosen = (current or serving)[-1:]
        return chosen[0].name if chosen else None

    def model_metadata(self, model_name: str) -> ModelMetadata:
        """Metadata for a model, or a minimal record for models only a deployment names."""
        return self.metadata.get(model_name) or ModelMetadata(name=model_name, display_name=model_name)

    # --- selection --------------------------------------------------------------------------

    def select(self, selection: str | list[str]) -> list[str]:
        """Expand names, comma lists and tags (``text``, ``all``) into deployment names."""
        items = selection if isinstance(selection, list) else _split(selection)
        chosen: list[str] = []
        for item in items:
            for name in self._expand(item):
                if name not in chosen:
                    chosen.append(name)
        return chosen

    def _expand(self, item: str) -> list[str]:
        if item.startswith("{"):
            return [self._clembench_spec(item).name]
        if item in self.deployments:
            return [item]
        if any(raw["model_name"] == item for raw, _ in self.clembench):
            return [self.deployment(item).name]  # checks that its backend is served
        default = self.default_deployment(item)
        if default is not None:
            return [default]
        tagged = self._by_tag(item)
        if tagged is not None:
            return tagged
        return [self.deployment(item).name]

    def _by_tag(self, tag: str) -> list[str] | None:
        wanted = _normalise_tag(tag)
        if wanted == "all":
            return [d.name for d in self.deployments.values() if not d.deprecated]
        models = {m.name for m in self.metadata.values() if wanted in {_normalise_tag(t) for t in m.tags}}
        if not models:
            return None
        return [d.name for d in self.deployments.values() if d.model_name in models and not d.deprecated]


def _split(selection: str) -> list[str]:
    """Split a comma list, leaving JSON specs (which contain commas) whole."""
    text = selection.strip()
    if text.startswith("{"):
        return [text]
    return [part.strip() for part in text.split(",") if part.strip()]


def _normalise_tag(tag: str) -> str:
    """HELM writes ``TEXT_MODEL_TAG`` in files and ``text`` in run entries; both mean one tag."""
    lowered = tag.strip().lower()
    return lowered[: -len("_model_tag")] if lowered.endswith("_model_tag") else lowered
