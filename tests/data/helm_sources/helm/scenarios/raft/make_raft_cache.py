"""Writes the small RAFT fixture in the form HELM's RAFTScenario reads offline.

HELM's scenario calls ``datasets.load_dataset("ought/raft", "ade_corpus_v2", cache_dir=<its
folder>/data, split="train")``; offline, ``datasets`` reads the dataset from that cache
(``ought___raft/<config>/<version>/<hash>/`` with ``dataset_info.json`` and ``raft-train.arrow``).
This script writes that cache for 20 made-up ADE-corpus-style sentences with RAFT's own
fields and labels, and the two-line ``prompt_construction_settings.json`` HELM downloads from
RAFT's repository (field order, instructions), in both places HELM reads it. Run it with the
crfm-helm environment's python (``datasets`` 3.6): ``python make_raft_cache.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
from datasets.arrow_writer import ArrowWriter

HERE = Path(__file__).parent
CONFIG = "ade_corpus_v2"
ROWS = [
    ("The patient developed a severe rash after starting amoxicillin.", 1),
    ("Blood pressure was measured twice daily during the study.", 2),
    ("Hepatotoxicity was observed in two patients receiving isoniazid.", 1),
    ("The trial enrolled 120 adults with moderate asthma.", 2),
    ("She reported persistent nausea following the first dose of metformin.", 1),
    ("Follow-up visits were scheduled every three months.", 2),
    ("Lithium therapy was associated with tremor and polyuria.", 1),
    ("The hospital introduced a new electronic records system.", 2),
    ("Acute kidney injury occurred after intravenous vancomycin.", 1),
    ("Participants completed a questionnaire about their diet.", 2),
    ("A case of agranulocytosis induced by clozapine is described.", 1),
    ("The clinic is open from nine to five on weekdays.", 2),
    ("Warfarin led to a major gastrointestinal bleed in an elderly man.", 1),
    ("Samples were stored at minus eighty degrees.", 2),
    ("Prolonged QT interval was noted after methadone was increased.", 1),
    ("The authors thank the nursing staff for their help.", 2),
    ("Steroid-induced hyperglycemia required insulin treatment.", 1),
    ("Data were analysed with a mixed-effects model.", 2),
    ("Angioedema developed within hours of taking lisinopril.", 1),
    ("Most patients were recruited from rural areas.", 2),
]
FIELDS = {CONFIG: ["Sentence"]}
INSTRUCTIONS = {CONFIG: "Label the sentence based on whether it is related to an adverse drug effect (ADE). "
                        "Possible labels:\n1. ADE-related\n2. not ADE-related"}


def main() -> None:
    folder = HERE / "data"
    features = datasets.Features({"Sentence": datasets.Value("string"), "ID": datasets.Value("int32"),
                                  "Label": datasets.ClassLabel(names=["Unlabeled", "ADE-related", "not ADE-related"])})
    cache = folder / "ought___raft" / CONFIG / "0.0.0" / ("0" * 64)
    cache.mkdir(parents=True, exist_ok=True)
    with ArrowWriter(features=features, path=str(cache / "raft-train.arrow")) as writer:
        for n, (sentence, label) in enumerate(ROWS):
            writer.write({"Sentence": sentence, "ID": n, "Label": label})
        count, size = writer.finalize()
    splits = datasets.SplitDict(dataset_name="raft")
    splits.add(datasets.SplitInfo(name="train", num_bytes=size, num_examples=count, dataset_name="raft"))
    datasets.DatasetInfo(features=features, config_name=CONFIG, dataset_name="raft", splits=splits,
                         builder_name="raft", version="0.0.0").write_to_directory(str(cache))
    settings = json.dumps(FIELDS) + "\n" + json.dumps(INSTRUCTIONS) + "\n"
    for place in (HERE, folder):  # the run spec reads it from the scenario's folder, the scenario from data/
        (place / "prompt_construction_settings.json").write_text(settings, encoding="utf-8")


if __name__ == "__main__":
    main()
