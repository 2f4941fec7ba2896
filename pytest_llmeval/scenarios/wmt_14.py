"""WMT 2014 (Bojar et al. 2014) translation into or out of English, as HELM's ``wmt_14`` builds it.

HELM loads Hugging Face's ``wmt14`` config ``<xx>-en`` and, because the training splits are large
(millions of pairs), keeps the first 20,000 rows of the train split shuffled with seed 42
(``datasets``' ``Dataset.shuffle(seed=42)``: ``numpy.random.default_rng(42).permutation(len)``),
then drops rows whose target sentence was seen before. Validation and test are used whole.
So the whole train split's length is needed, but only the chosen rows are read.

The data is the mirror's ``hf/wmt14/<xx>-en/<split>/`` (a ``datasets`` save_to_disk folder) or the Hub's
parquet files of ``wmt/wmt14`` (``scenarios/hf_tables.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llmeval.adapters.adapter_spec import ADAPT_GENERATION, AdapterSpec
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import Description, RunSpec, helm_basic_metric_specs, run_spec_function
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.hf_tables import HFTableError, locate_split, shuffled_order
from pytest_llmeval.scenarios.scenario import (
    CORRECT_TAG,
    TEST_SPLIT,
    TRAIN_SPLIT,
    VALID_SPLIT,
    Instance,
    Reference,
    Scenario,
    with_ids,
)

DATASET = "wmt14"  # the mirror's folder name: HELM's load_dataset("wmt14", ...)
HUB_DATASET = "wmt/wmt14"  # where the Hub keeps it now, with parquet files per config and split
LANGUAGES = {"cs": "Czech", "de": "German", "fr": "French", "hi": "Hindi", "ru": "Russian", "en": "English"}
MAX_TRAIN_INSTANCES = 20_000  # HELM's
SHUFFLE_SEED = 42
METRICS = ["exact_match", "quasi_exact_match", "f1_score", "rouge_l", "bleu_1", "bleu_4"]


@dataclass
class WMT14Scenario(Scenario):
    """One language pair: 20,000 shuffled training pairs at most (deduplicated), validation and test."""

    locator: DataLocator
    source_language: str
    target_language: str

    name = "WMT_14"
    description = "Scenario for the 2014 Workshop on Statistical Machine Translation"
    tags = ("machine_translation",)

    @property
    def config(self) -> str:
        """HELM's subset: ``<the other language>-en``."""
        other = self.source_language if self.source_language != "en" else self.target_language
        return f"{other}-en"

    def get_instances(self) -> list[Instance]:
        train = locate_split(self.locator, DATASET, self.config, "train", hub_id=HUB_DATASET)
        chosen = shuffled_prefix(train.num_rows(), MAX_TRAIN_INSTANCES, SHUFFLE_SEED)
        seen: set[str] = set()
        instances = []
        for row in train.rows(chosen):
            source, target = self._pair(row, train.display)
            if target not in seen:  # HELM keeps the first pair of each target sentence
                seen.add(target)
                instances.append(self._instance(source, target, TRAIN_SPLIT))
        for split, helm_split in (("validation", VALID_SPLIT), ("test", TEST_SPLIT)):
            table = locate_split(self.locator, DATASET, self.config, split, hub_id=HUB_DATASET)
            instances += [self._instance(*self._pair(row, table.display), helm_split) for row in table.rows()]
        return with_ids(instances)

    def _pair(self, row: dict[str, Any], origin: str) -> tuple[str, str]:
        translation = row.get("translation")
        source, target = (translation.get(lang) if isinstance(translation, dict) else None
                          for lang in (self.source_language, self.target_language))
        if not isinstance(source, str) or not isinstance(target, str):
            raise HFTableError(f"{origin}: a row's translation should hold {self.source_language!r} and "
                               f"{self.target_language!r} texts, got {str(row)[:80]}")
        return source, target

    @staticmethod
    def _instance(source: str, target: str, split: str) -> Instance:
        return Instance(input=source, references=(Reference(target, (CORRECT_TAG,)),), split=split)


def shuffled_prefix(length: int, count: int, seed: int) -> list[int]:
    """The first ``count`` row positions of ``Dataset.shuffle(seed=seed)`` over ``length`` rows."""
    return shuffled_order(length, seed)[:count]


def language_pair(description: Description) -> tuple[str, str]:
    """``language_pair=cs-en`` -> ("cs", "en"), checked as HELM checks it."""
    value = description.get("language_pair")
    if value is None:
        raise ConfigError(f"{description} needs language_pair=<source>-<target>, e.g. language_pair=de-en",
                          field="language_pair")
    source, _, target = str(value).partition("-")
    if source not in LANGUAGES or target not in LANGUAGES:
        raise ConfigError(f"language_pair={value} in {description}: WMT14 only includes {', '.join(LANGUAGES)}",
                          field="language_pair")
    if source == target or "en" not in (source, target):
        raise ConfigError(f"language_pair={value} in {description}: one language should be English and the "
                          f"other not", field="language_pair")
    return source, target


@run_spec_function("wmt_14")
def wmt_14_spec(description: Description) -> RunSpec:
    """HELM's ``wmt_14``: ``Czech: ...``/``English: ...`` lines after one instruction, one example."""
    unknown = sorted(set(dict(description.args)) - {"language_pair"})
    if unknown:
        raise ConfigError(f"unknown argument(s) {', '.join(unknown)} in {description}; wmt_14 takes language_pair",
                          field=unknown[0])
    source, target = language_pair(description)
    source_name, target_name = LANGUAGES[source], LANGUAGES[target]
    # HELM's get_machine_translation_adapter_spec: its instructions end without a newline.
    adapter = AdapterSpec(
        method=ADAPT_GENERATION, instructions=f"Translate the following sentences from {source_name} to {target_name}.",
        instructions_end="", input_prefix=f"{source_name}: ", input_suffix="\n", output_prefix=f"{target_name}: ",
        output_suffix="\n", max_train_instances=1, num_outputs=1, stop_sequences=("\n\n",), temperature=0.0,
    )
    return RunSpec(
        name=str(Description("wmt_14", description.args)), scenario_class=WMT14Scenario,
        scenario_args={"source_language": source, "target_language": target}, adapter_spec=adapter,
        metrics=list(METRICS), groups=["wmt_14"], main_metric="bleu_4",
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.wmt_14_scenario.WMT14Scenario",
                            "args": {"source_language": source, "target_language": target}},
        helm_metric_specs=helm_basic_metric_specs(list(METRICS)),
    )
