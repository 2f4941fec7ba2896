"""mirrored_datasets: lm-eval's ``datasets.load_dataset`` calls answered from the shared data mirror.

The mirror holds ``hf/<path>/<name or default>/<split>/`` folders (``save_to_disk`` copies); a
split or dataset it lacks is fetched from the Hub, which is offline here (``HF_HUB_OFFLINE=1``),
so it fails with the one-line DataNotFoundError.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

datasets = pytest.importorskip("datasets")

from pytest_llmeval.errors import DataNotFoundError  # noqa: E402
from pytest_llmeval.harness.hf_data import check_needed, mirror_folder, mirrored_datasets  # noqa: E402
from pytest_llmeval.scenarios.data import DATA_DIR_ENV, DataLocator  # noqa: E402

MIRROR = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")
HELLASWAG = MIRROR / "hf" / "Rowan" / "hellaswag" / "default"
pytestmark = pytest.mark.skipif(not (HELLASWAG / "validation").is_dir(),
                                reason=f"no lm-eval hellaswag copy in the data mirror at {MIRROR}")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def locator() -> DataLocator:
    return DataLocator(mirror=MIRROR, cache=None)


@pytest.fixture(scope="module")
def validation() -> Any:
    """The mirror's hellaswag validation split, read directly."""
    return datasets.load_from_disk(str(HELLASWAG / "validation"))


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


def test_load_dataset_returns_the_mirrors_splits(locator: DataLocator, validation: Any) -> None:
    with mirrored_datasets(locator):
        loaded = datasets.load_dataset("Rowan/hellaswag")
    assert isinstance(loaded, datasets.DatasetDict)
    assert list(loaded) == ["validation"]
    split = loaded["validation"]
    assert split.num_rows == validation.num_rows > 0
    assert split.column_names == validation.column_names
    assert split[:3] == validation[:3]
    assert split[-1] == validation[-1]
    assert loaded.missing == {}


def test_keyword_arguments_as_lm_eval_passes_them(locator: DataLocator, validation: Any) -> None:
    """lm-eval calls ``load_dataset(path=..., name=..., **dataset_kwargs)``."""
    with mirrored_datasets(locator):
        loaded = datasets.load_dataset(path="Rowan/hellaswag", name=None)
        split = datasets.load_dataset(path="Rowan/hellaswag", name=None, split="validation")
    assert list(loaded) == ["validation"]
    assert isinstance(split, datasets.Dataset)
    assert split.num_rows == validation.num_rows
    assert split[0] == validation[0]


def test_split_argument_returns_one_dataset(locator: DataLocator, validation: Any) -> None:
    with mirrored_datasets(locator):
        split = datasets.load_dataset("Rowan/hellaswag", split="validation")
    assert isinstance(split, datasets.Dataset)
    assert split.num_rows == validation.num_rows
    assert split[5] == validation[5]


def test_a_missing_split_is_an_empty_stand_in_until_the_run_needs_it(locator: DataLocator,
                                                                     validation: Any) -> None:
    with mirrored_datasets(locator):
        loaded = datasets.load_dataset("Rowan/hellaswag")
        train = loaded["train"]  # lm-eval reads the few-shot split while building the task
    assert train.num_rows == 0
    assert train.column_names == validation.column_names
    assert set(loaded.missing) == {"train"}
    check_needed(loaded, ["validation"])  # a zero-shot run never reads train
    with pytest.raises(DataNotFoundError) as caught:
        check_needed(loaded, ["validation", "train"])
    message = _one_line(caught.value)
    assert "Rowan/hellaswag" in message
    assert "split 'train'" in message
    assert f"{HELLASWAG / 'train'}/" in message
    assert "it has validation" in message


def test_a_missing_split_asked_for_by_name_fails_in_one_line(locator: DataLocator) -> None:
    with mirrored_datasets(locator), pytest.raises(DataNotFoundError) as caught:
        datasets.load_dataset("Rowan/hellaswag", split="train")
    message = _one_line(caught.value)
    assert "Rowan/hellaswag" in message and "'train'" in message
    assert str(HELLASWAG / "train") in message


def test_a_dataset_not_in_the_mirror_fails_offline_in_one_line(locator: DataLocator) -> None:
    with mirrored_datasets(locator), pytest.raises(DataNotFoundError) as caught:
        datasets.load_dataset(path="nobody/no-such-dataset", name="cfg", split="test")
    message = _one_line(caught.value)
    assert "nobody/no-such-dataset" in message and "config cfg" in message and "test" in message
    assert str(MIRROR / "hf" / "nobody" / "no-such-dataset" / "cfg" / "test") in message


def test_a_config_the_mirror_lacks_is_not_answered_by_another(locator: DataLocator) -> None:
    assert mirror_folder(locator, "Rowan/hellaswag", None) == HELLASWAG
    assert mirror_folder(locator, "Rowan/hellaswag", "other") is None
    with mirrored_datasets(locator), pytest.raises(DataNotFoundError, match=r"config other"):
        datasets.load_dataset("Rowan/hellaswag", "other", split="validation")


def test_without_a_mirror_the_error_says_where_a_mirror_would_hold_it() -> None:
    with mirrored_datasets(DataLocator(mirror=None, cache=None)), pytest.raises(DataNotFoundError) as caught:
        datasets.load_dataset("Rowan/hellaswag", split="validation")
    message = _one_line(caught.value)
    assert "no data mirror is set" in message and "hf/Rowan/hellaswag/default/validation/" in message


def test_outside_the_block_load_dataset_is_the_original(locator: DataLocator) -> None:
    original = datasets.load_dataset
    with mirrored_datasets(locator):
        assert datasets.load_dataset is not original
    assert datasets.load_dataset is original
    with pytest.raises(RuntimeError), mirrored_datasets(locator):
        raise RuntimeError("a task failed to build")
    assert datasets.load_dataset is original


def test_the_block_yields_the_missing_splits_messages(locator: DataLocator) -> None:
    with mirrored_datasets(locator) as missing:
        assert missing == {}
        loaded = datasets.load_dataset("Rowan/hellaswag")
        loaded["validation"]
        assert missing == {}
        loaded["train"]
    assert list(missing) == ["train"]
    assert missing["train"] == loaded.missing["train"]
    assert "Rowan/hellaswag" in _one_line(DataNotFoundError(missing["train"]))


def test_missing_splits_of_one_dataset_do_not_fail_another(locator: DataLocator) -> None:
    if not (MIRROR / "hf" / "cais" / "mmlu" / "anatomy" / "test").is_dir():
        pytest.skip("no cais/mmlu anatomy copy in the mirror")
    with mirrored_datasets(locator):
        hellaswag = datasets.load_dataset("Rowan/hellaswag")
        assert hellaswag["test"].num_rows == 0
        anatomy = datasets.load_dataset("cais/mmlu", "anatomy")
        assert anatomy["test"].num_rows > 0
    with pytest.raises(DataNotFoundError, match="Rowan/hellaswag"):
        check_needed(hellaswag, ["test"])
    check_needed(anatomy, ["test"])  # raises "lm-eval data Rowan/hellaswag ..., split 'test'"
    assert "test" not in anatomy.missing


def test_check_needed_ignores_plain_datasets(validation: Any) -> None:
    check_needed(validation, ["test", "train"])
    check_needed(None, ["test"])


ARC_EASY = {  # lm-eval's arc_easy.yaml, built here without its task index
    "task": "arc_easy_copy", "dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Easy",
    "output_type": "multiple_choice", "training_split": "train", "validation_split": "validation",
    "test_split": "test", "doc_to_text": "Question: {{question}}\nAnswer:",
    "doc_to_target": "{{choices.label.index(answerKey)}}", "doc_to_choice": "{{choices.text}}",
    "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]}


def test_a_task_built_on_a_missing_scored_split_leaves_the_message_in_the_block(locator: DataLocator) -> None:
    """lm-eval builds arc_easy on its test split, which the mirror lacks: the build fails on the empty
    stand-in (lm-eval reads its first document) and the block holds the one-line message to raise instead."""
    pytest.importorskip("lm_eval")
    from lm_eval.api.task import ConfigurableTask

    if not (MIRROR / "hf" / "allenai" / "ai2_arc" / "ARC-Easy" / "validation").is_dir():
        pytest.skip("no ARC-Easy copy in the mirror")
    assert not (MIRROR / "hf" / "allenai" / "ai2_arc" / "ARC-Easy" / "test").exists()
    with mirrored_datasets(locator) as missing, pytest.raises(IndexError):
        ConfigurableTask(config=dict(ARC_EASY))
    assert "test" in missing
    message = _one_line(DataNotFoundError(missing["test"]))
    assert "allenai/ai2_arc" in message and "config ARC-Easy" in message and "split 'test'" in message
    assert str(MIRROR / "hf" / "allenai" / "ai2_arc" / "ARC-Easy" / "test") in message
