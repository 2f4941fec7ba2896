"""Run-spec functions for the built-in scenarios (HELM's ``get_*_spec``)."""

from __future__ import annotations

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import (
    Description,
    RunSpec,
    helm_basic_metric_specs,
    multiple_choice_joint,
    multiple_choice_separate,
    run_spec_function,
    value_expander,
)
from pytest_llmeval.scenarios.mmlu import SUBJECTS, MMLUScenario

MMLU_METHODS = ("multiple_choice_joint", "multiple_choice_separate_original")


@value_expander("mmlu", "subject", "all")
def mmlu_subjects() -> tuple[str, ...]:
    """``mmlu:subject=all``: one run per subject."""
    return SUBJECTS


@run_spec_function("mmlu")
def mmlu_spec(description: Description) -> RunSpec:
    """MMLU with HELM's prompts: the joint method (instructions naming the subject, 5 examples
    from ``dev``, a generated letter) or the separate method (each option scored on its own)."""
    args = dict(description.args)
    unknown = set(args) - {"subject", "method"}
    if unknown:
        raise ConfigError(f"unknown argument(s) {', '.join(sorted(unknown))} in {description}; "
                          f"mmlu takes subject and method", field=sorted(unknown)[0])
    subject = args.get("subject")
    if not subject:
        raise ConfigError(f"{description} needs subject=<name> (for example mmlu:subject=anatomy)",
                          field="subject")
    if subject not in SUBJECTS:  # fail when the eval file is read, not when the run starts
        raise ConfigError(f"unknown MMLU subject {subject!r} in {description}; use one of: {', '.join(SUBJECTS)}",
                          field="subject")
    method = args.get("method", "multiple_choice_joint")
    if method not in MMLU_METHODS:
        raise ConfigError(f"method={method!r} in {description}: supported methods are {', '.join(MMLU_METHODS)}",
                          field="method")
    if method == "multiple_choice_joint":
        adapter = multiple_choice_joint(
            f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.")
        metrics = ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]
    else:  # HELM's separate adapter takes no instructions; its only reference metric is exact_match
        adapter = multiple_choice_separate()
        metrics = ["exact_match"]
    return RunSpec(
        name=f"mmlu:subject={subject},method={method}", scenario_class=MMLUScenario,
        scenario_args={"subject": subject}, adapter_spec=adapter, metrics=metrics, groups=["mmlu"],
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.mmlu_scenario.MMLUScenario",
                            "args": {"subject": subject}},
        helm_metric_specs=helm_basic_metric_specs(
            ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]),
    )
