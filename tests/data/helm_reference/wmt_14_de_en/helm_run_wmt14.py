"""helm-run with HELM's WMT14 scenario reading the small wmt14 source files instead of the Hub.

Run with crfm-helm's Python, from the folder helm-run should work in:
    WMT14_SOURCES=<repository>/tests/data/helm_sources/hf/wmt14 python helm_run_wmt14.py --run-entries ...
(every argument is helm-run's). ``datasets.load_dataset`` in HELM's scenario module is replaced by
one returning a DatasetDict of the same rows, in memory, so HELM's own code shuffles, deduplicates
and builds the instances.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import datasets
import helm.benchmark.scenarios.wmt_14_scenario as wmt_14_scenario
from helm.benchmark.run import main

SOURCES = Path(os.environ["WMT14_SOURCES"])


def load_dataset(path: str, name: str, **_: Any) -> datasets.DatasetDict:
    assert path == "wmt14", path
    return datasets.DatasetDict({
        split: datasets.Dataset.from_list(datasets.load_from_disk(str(SOURCES / name / split)).to_list())
        for split in ("train", "validation", "test")
    })


wmt_14_scenario.load_dataset = load_dataset
sys.exit(main())
