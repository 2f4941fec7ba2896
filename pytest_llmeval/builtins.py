"""The built-in scenarios, value expanders, metrics, adapters, games and client backends, by an
explicit list: :func:`register_builtins` puts them into a session's fresh registries."""

from __future__ import annotations

from pytest_llmeval.adapters.adapter_spec import ADAPT_GENERATION, ADAPT_MULTIPLE_CHOICE_JOINT
from pytest_llmeval.clients.factory import BUILTIN_BACKENDS
from pytest_llmeval.extensions import BUILTIN, Registries
from pytest_llmeval.games.game_spec import BUILTIN_DIR
from pytest_llmeval.harness.entries import lm_eval_spec
from pytest_llmeval.metrics import MATCHERS
from pytest_llmeval.runspec import RUN_SPEC_MARK, VALUE_EXPANDER_MARK
from pytest_llmeval.scenarios.boolq import boolq_spec
from pytest_llmeval.scenarios.commonsense import commonsense_spec
from pytest_llmeval.scenarios.gsm import gsm_spec
from pytest_llmeval.scenarios.legalbench import legalbench_spec
from pytest_llmeval.scenarios.math import math_spec
from pytest_llmeval.scenarios.med_qa import med_qa_spec
from pytest_llmeval.scenarios.narrative_qa import narrative_qa_spec
from pytest_llmeval.scenarios.natural_qa import natural_qa_spec
from pytest_llmeval.scenarios.registration import joint_choice_adapter, question_answer_adapter
from pytest_llmeval.scenarios.specs import mmlu_spec, mmlu_subjects
from pytest_llmeval.scenarios.synthetic_reasoning import synthetic_reasoning_spec
from pytest_llmeval.scenarios.wmt_14 import wmt_14_spec

# Each function carries its name from its @run_spec_function / @value_expander decorator.
BUILTIN_RUN_SPECS = (mmlu_spec, boolq_spec, gsm_spec, synthetic_reasoning_spec, wmt_14_spec, natural_qa_spec,
                     narrative_qa_spec, commonsense_spec, med_qa_spec, legalbench_spec, math_spec,
                     lm_eval_spec)
BUILTIN_EXPANDERS = (mmlu_subjects,)
USER_SCENARIO_ADAPTERS = ((ADAPT_GENERATION, question_answer_adapter),
                          (ADAPT_MULTIPLE_CHOICE_JOINT, joint_choice_adapter))


def register_builtins(registries: Registries) -> Registries:
    """Register everything pytest-llmeval ships into ``registries``; returns them."""
    for function in BUILTIN_RUN_SPECS:
        registries.run_spec_function(getattr(function, RUN_SPEC_MARK), function)
    for expander in BUILTIN_EXPANDERS:
        scenario, key, value = getattr(expander, VALUE_EXPANDER_MARK)
        registries.value_expander(scenario, key, value, expander)
    for name, matcher in MATCHERS.items():
        registries.metrics.add(name, matcher)
    for name, adapter in USER_SCENARIO_ADAPTERS:
        registries.adapters.add(name, adapter)
    registries.games.add(BUILTIN, BUILTIN_DIR)
    for class_name, backend in BUILTIN_BACKENDS.items():
        registries.clients.add(class_name, backend)
    return registries


def builtin_registries() -> Registries:
    """Fresh registries holding the built-ins only (a session adds plugins and user scenarios)."""
    return register_builtins(Registries())


__all__ = ["builtin_registries", "register_builtins"]
