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
from pytest_llmeval.registry.generators import generated_deployment
from pytest_llmeval.registry.selection import (
    NO_DEPLOYMENT,
    Pick,
    Reason,
    Selection,
    by_model,
    default_deployment,
    model_groups,
    models_with_tag,
    normalise_tag,
)

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
            for deployment in loader.load_deployments(path):
                # An override moves to the end, as HELM appends it: "the last deployment" of a
                # model (its default) is then the local one.
                self.deployments.pop(deployment.name, None)
                self.deployments[deployment.name] = deployment
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
        default = default_deployment([d for d in self.deployments.values() if d.model_name == name])
        if default is not None:
            return default
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
        """HELM's deployment generators (``together/<org>/<model>``, ...: :mod:`generators`), and
        a hub id (``huggingface/<org>/<repo>``) or a checkpoint folder on the local backend."""
        if name.startswith(HF_PREFIX):
            target = name[len(HF_PREFIX):]
        elif Path(name).expanduser().is_dir():
            target = str(Path(name).expanduser().resolve())
        else:
            return generated_deployment(name)
        return ModelDeployment(
            name=name, model_name=target, tokenizer_name=target,
            client_spec=ObjectSpec(HF_CLIENT, {"pretrained_model_name_or_path": target}),
            source="<generated>",
        )

    def model_metadata(self, model_name: str) -> ModelMetadata:
        """Metadata for a model, or a minimal record for models only a deployment names."""
        return self.metadata.get(model_name) or ModelMetadata(name=model_name, display_name=model_name)

    # --- selection --------------------------------------------------------------------------

    def select(self, selection: str | list[str]) -> list[str]:
        """Expand names, comma lists, HELM's model groups and tags into deployment names."""
        return self.choose(selection).deployments

    def choose(self, selection: str | list[str], reason: Reason | None = None, *,
               keep_named: bool = False) -> Selection:
        """What a selection runs on, as helm-run's ``model=`` does (see :mod:`selection`).

        ``reason`` says why a deployment cannot be built here (or None): a group leaves such
        deployments out and records why; a deployment or model named on its own fails with it,
        here or (``keep_named``: a run entry's own ``model=``, so its file still collects) when
        its item runs.
        """
        items = selection if isinstance(selection, list) else _split(selection)
        index = by_model(self.deployments.values())
        groups: dict[str, list[str]] | None = None
        chosen = Selection()
        for item in items:
            if groups is None and not item.startswith("{"):
                groups = model_groups(self.metadata, self.deployments.values())
            group = self._group(item, groups or {})
            if group is None:
                pick = self._pick(item, index)
                why = reason(self.deployment(pick.deployment)) if reason is not None and not keep_named else None
                if why is not None:
                    deployment = self.deployment(pick.deployment)
                    raise ConfigError(f"{deployment.client_spec.class_name}: {why}", file=deployment.source,
                                      entry=deployment.name, field="client_spec.class_name")
                chosen.add(pick)
                continue
            for model in group:
                default = default_deployment(index.get(model, ())) or self._model_itself(model)
                if default is None:
                    chosen.skipped[model] = NO_DEPLOYMENT
                    continue
                why = reason(default) if reason is not None else None
                if why is not None:
                    chosen.skipped[default.name] = why
                else:
                    chosen.add(Pick(default.name, model, True, model))
        return chosen.labelled()

    def _group(self, item: str, groups: dict[str, list[str]]) -> list[str] | None:
        """The model names of a HELM group (``text``, ``TEXT_MODEL_TAG``) or any tag, else None."""
        if item in groups:
            return groups[item]
        if "/" in item or item.startswith("{") or item in self.deployments:
            return None
        name = normalise_tag(item)
        if name in groups:
            return groups[name]
        return models_with_tag(self.metadata, item)

    def _pick(self, item: str, index: dict[str, list[ModelDeployment]]) -> Pick:
        """A deployment name, a model name (its default deployment), a clembench name or spec."""
        if item.startswith("{"):
            deployment = self._clembench_spec(item)
            return Pick(deployment.name, deployment.model_name, False, deployment.name)
        if item in self.deployments:
            deployment = self.deployments[item]
            return Pick(item, deployment.model_name, False, item)
        if any(raw["model_name"] == item for raw, _ in self.clembench):
            deployment = self.deployment(item)  # checks that its backend is served
            return Pick(deployment.name, deployment.model_name, False, deployment.name)
        default = default_deployment(index.get(item, ()))
        if default is not None:
            return Pick(default.name, item, True, item)
        deployment = self.deployment(item)
        return Pick(deployment.name, deployment.model_name, False, deployment.name)

    def _model_itself(self, model: str) -> ModelDeployment | None:
        """HELM's fallback for a model with no deployment of its own: a deployment of that name,
        or one made on the fly (``huggingface/<org>/<repo>``)."""
        return self.deployments.get(model) or self._on_the_fly(model)

    def default_deployment(self, model: str) -> str | None:
        """The deployment helm-run runs ``model`` on (HELM's rule), or None."""
        default = default_deployment(by_model(self.deployments.values()).get(model, ())) or self._model_itself(model)
        return default.name if default is not None else None


def _split(selection: str) -> list[str]:
    """Split a comma list, leaving JSON specs (which contain commas) whole."""
    text = selection.strip()
    if text.startswith("{"):
        return [text]
    return [part.strip() for part in text.split(",") if part.strip()]
