"""Reading registry files: HELM's three YAML files and clembench's ``model_registry.json``.

Built-in files come first; a local directory (HELM's ``prod_env/``) adds entries and
overrides built-in ones of the same name. Every file is checked against its JSON Schema and
any problem is raised as one :class:`ConfigError` naming the file, the entry and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata, ObjectSpec, TokenizerConfig
from pytest_llmeval.validation import registry_schemas as schemas
from pytest_llmeval.validation.validator import check, read_document

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "registries"

METADATA_FILE = "model_metadata.yaml"
DEPLOYMENTS_FILE = "model_deployments.yaml"
TOKENIZERS_FILE = "tokenizer_configs.yaml"
CLEMBENCH_FILE = "model_registry.json"

# clembench backends and the client that serves each.
CLEMBENCH_BACKENDS = {
    "huggingface_local": "pytest_llmeval.clients.HuggingFaceClient",
    "openai": "pytest_llmeval.clients.OpenAICompatibleClient",
    "openai_compatible": "pytest_llmeval.clients.OpenAICompatibleClient",
    "generic_openai_compatible": "pytest_llmeval.clients.OpenAICompatibleClient",
    "vllm": "pytest_llmeval.clients.OpenAICompatibleClient",
}
CLEMBENCH_CHAT_KEYS = (
    "premade_chat_template", "custom_chat_template", "eos_to_cull", "output_split_prefix",
    "slow_tokenizer",
)


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


def load_clembench(path: Path) -> list[tuple[dict[str, Any], ModelDeployment]]:
    """Read a clembench registry; each entry keeps its raw dict for partial-spec unification."""
    document = read_structured(path)
    validate(document, schemas.CLEMBENCH_REGISTRY, path)
    out = []
    for index, raw in enumerate(document):
        backend = raw["backend"]
        # An unknown backend is reported when the entry is selected (see check_backend):
        # clembench's own registry lists backends this plugin does not serve.
        class_name = CLEMBENCH_BACKENDS.get(backend, f"clembench backend {backend!r}")
        args: dict[str, Any] = {}
        if backend == "huggingface_local":
            if "huggingface_id" not in raw:
                raise ConfigError("is required for the huggingface_local backend", file=path,
                                  entry=f"#{index} ({raw['model_name']!r})", field="huggingface_id")
            args["pretrained_model_name_or_path"] = raw["huggingface_id"]
            args.update({k: raw[k] for k in CLEMBENCH_CHAT_KEYS if k in raw})
        else:
            args["model"] = raw.get("model_id", raw["model_name"])
            args["backend"] = backend
        try:
            context = _parse_context_size(raw.get("context_size"))
        except ValueError:
            raise ConfigError(f"{raw['context_size']!r} is not a size such as 4096, \"128k\" or \"1M\"", file=path,
                              entry=f"#{index} ({raw['model_name']!r})", field="context_size") from None
        out.append((raw, ModelDeployment(
            name=raw["model_name"], model_name=raw["model_name"],
            client_spec=ObjectSpec(class_name=class_name, args=args),
            max_sequence_length=context, source=str(path),
        )))
    return out


def check_backend(raw: dict[str, Any], deployment: ModelDeployment) -> None:
    """A selected clembench entry needs a backend this plugin serves; the error names ``backend``."""
    if raw["backend"] not in CLEMBENCH_BACKENDS:
        raise ConfigError(f"unknown backend {raw['backend']!r}; served backends: {', '.join(CLEMBENCH_BACKENDS)}",
                          file=deployment.source, entry=raw["model_name"], field="backend")


def _parse_context_size(value: Any) -> int | None:
    """clembench writes context sizes as ``4096``, ``"128k"`` or ``"4M"`` (``""``: unknown)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    for suffix, factor in (("k", 1024), ("m", 1024 * 1024)):
        if text.endswith(suffix):
            return int(float(text[:-1]) * factor)
    return int(text)


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


def registry_files(directories: Iterable[Path]) -> list[Path]:
    """All registry files that exist in ``directories``, in override order."""
    names = (METADATA_FILE, DEPLOYMENTS_FILE, TOKENIZERS_FILE, CLEMBENCH_FILE)
    return [d / n for d in directories for n in names if (d / n).is_file()]
