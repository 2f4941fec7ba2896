"""Which deployments a model selection runs on, as helm-run decides it.

HELM's ``model=`` takes a model name, a deployment name or a model group (``text``, ``code``,
``all``, ``ablation_text``, ``summarization_zs``, ...: ``ModelRunExpander`` in crfm-helm's
``run_expander.py``). A group is a list of *model names* (deprecated and unsupported models
left out); each model runs on its default deployment (``get_default_model_deployment_for_model``
in ``model_deployment_registry.py``): the last deployment registered for it that is not
deprecated, else the last one. A model with no metadata counts as a text model with full
functionality, as HELM's ``get_unknown_model_metadata`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata

# HELM's tag-based groups (ModelRunExpander.get_model_group_to_model_names), in HELM's order.
TAG_GROUPS: Mapping[str, tuple[str, ...]] = {
    "full_functionality_text": ("FULL_FUNCTIONALITY_TEXT_MODEL_TAG",),
    "all": (),  # every model
    "text_code": ("TEXT_MODEL_TAG", "CODE_MODEL_TAG"),
    "text": ("TEXT_MODEL_TAG",),
    "code": ("CODE_MODEL_TAG",),
    "instruction_following": ("INSTRUCTION_FOLLOWING_MODEL_TAG",),
    "limited_functionality_text": ("LIMITED_FUNCTIONALITY_TEXT_MODEL_TAG",),
    "text_to_image": ("TEXT_TO_IMAGE_MODEL_TAG",),
    "vlm": ("VISION_LANGUAGE_MODEL_TAG",),
    "audiolm": ("AUDIO_LANGUAGE_MODEL_TAG",),
}
# HELM's fixed groups.
FIXED_GROUPS: Mapping[str, tuple[str, ...]] = {
    "ai21/j1-jumbo": ("ai21/j1-jumbo",),
    "openai/curie": ("openai/curie",),
    "summarization_zs": ("openai/davinci", "openai/curie", "openai/text-davinci-002", "openai/text-curie-001"),
    "biomedical": ("openai/text-davinci-003",),
    "interactive_qa": ("openai/text-davinci-001", "openai/davinci", "ai21/j1-jumbo", "openai/text-babbage-001"),
    "opinions_qa_openai": ("openai/ada", "openai/davinci", "openai/text-ada-001", "openai/text-davinci-001",
                           "openai/text-davinci-002", "openai/text-davinci-003"),
    "opinions_qa_ai21": ("ai21/j1-grande", "ai21/j1-jumbo", "ai21/j1-grande-v2-beta"),
}
ABLATION_TAG = "ABLATION_MODEL_TAG"
EXCLUDED_TAGS = ("DEPRECATED_MODEL_TAG", "UNSUPPORTED_MODEL_TAG")
UNKNOWN_MODEL_TAGS = ("TEXT_MODEL_TAG", "FULL_FUNCTIONALITY_TEXT_MODEL_TAG")

NO_DEPLOYMENT = "the model has no deployment"


@dataclass(frozen=True)
class Pick:
    """One deployment to run; ``label`` names it in item ids (the model when it is the model's
    default deployment and was chosen by model or group, else the deployment)."""

    deployment: str
    model: str
    by_model: bool = False
    label: str = ""


@dataclass
class Selection:
    """The deployments a selection runs on, and what a group expansion left out and why."""

    picks: list[Pick] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # deployment (or model) -> reason

    @property
    def deployments(self) -> list[str]:
        return [pick.deployment for pick in self.picks]

    def add(self, pick: Pick) -> None:
        if all(p.deployment != pick.deployment for p in self.picks):
            self.picks.append(pick)

    def labelled(self) -> Selection:
        """The same picks with unique labels: colliding labels fall back to deployment names."""
        picks = [p if p.label else Pick(p.deployment, p.model, p.by_model, p.deployment) for p in self.picks]
        while True:
            counts: dict[str, int] = {}
            for pick in picks:
                counts[pick.label] = counts.get(pick.label, 0) + 1
            clashing = [i for i, p in enumerate(picks) if counts[p.label] > 1 and p.label != p.deployment]
            if not clashing:
                return Selection(picks, dict(self.skipped))
            for i in clashing:
                picks[i] = Pick(picks[i].deployment, picks[i].model, picks[i].by_model, picks[i].deployment)


def model_groups(metadata: Mapping[str, ModelMetadata], deployments: Iterable[ModelDeployment]) -> dict[str, list[str]]:
    """HELM's groups -> model names, in HELM's order, deprecated and unsupported models left out."""
    tags = {name: set(m.tags) for name, m in metadata.items()}
    for deployment in deployments:
        tags.setdefault(deployment.model_name, set(UNKNOWN_MODEL_TAGS))
    everything = list(tags)
    groups: dict[str, list[str]] = {}
    for group, wanted in TAG_GROUPS.items():
        if not wanted:
            groups[group] = everything
        else:  # text_code: all text models, then all code models
            groups[group] = [m for tag in wanted for m in everything if tag in tags[m]]
    groups.update((group, list(models)) for group, models in FIXED_GROUPS.items())
    ablation = {m for m in everything if ABLATION_TAG in tags[m]}
    for family, models in list(groups.items()):
        groups["ablation" if family == "all" else f"ablation_{family}"] = [m for m in models if m in ablation]
    excluded = {m for m in everything if tags[m] & set(EXCLUDED_TAGS)}
    return {group: _unique(m for m in models if m not in excluded) for group, models in groups.items()}


def models_with_tag(metadata: Mapping[str, ModelMetadata], tag: str) -> list[str] | None:
    """Any other tag (``LOCAL_MODEL_TAG``, ``hosted``): its models, or None if no model has it."""
    wanted = normalise_tag(tag)
    tagged = [m for m in metadata.values() if wanted in {normalise_tag(t) for t in m.tags}]
    if not tagged:
        return None
    return [m.name for m in tagged if not set(m.tags) & set(EXCLUDED_TAGS)]


def by_model(deployments: Iterable[ModelDeployment]) -> dict[str, list[ModelDeployment]]:
    """Each model's deployments in registration order."""
    index: dict[str, list[ModelDeployment]] = {}
    for deployment in deployments:
        index.setdefault(deployment.model_name, []).append(deployment)
    return index


def default_deployment(candidates: Sequence[ModelDeployment]) -> ModelDeployment | None:
    """HELM's rule: the last deployment that is not deprecated, else the last one."""
    live = [d for d in candidates if not d.deprecated]
    return live[-1] if live else (candidates[-1] if candidates else None)


def skipped_summary(skipped: Mapping[str, str]) -> str | None:
    """One line: how many models of model groups were left out, and why (most common reason first)."""
    if not skipped:
        return None
    reasons: dict[str, int] = {}
    for reason in skipped.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    parts = [f"{count} because {reason}" for reason, count in sorted(reasons.items(), key=lambda r: -r[1])]
    return f"pytest-llmeval: {len(skipped)} model(s) of model groups left out: {'; '.join(parts)}"


def normalise_tag(tag: str) -> str:
    """HELM writes ``TEXT_MODEL_TAG`` in files and ``text`` in run entries; both mean one tag."""
    lowered = tag.strip().lower()
    return lowered[: -len("_model_tag")] if lowered.endswith("_model_tag") else lowered


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


Reason = Callable[[ModelDeployment], "str | None"]
