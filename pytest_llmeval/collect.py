"""Eval files become pytest items: one per (run entry x selected model).

An eval file is YAML listing run entries in HELM's description syntax, each optionally with
gates; HELM's ``run_specs*.conf`` and ``run_entries*.conf`` files (HOCON, read with pyhocon as
helm-run reads them) are read too, their ``priority`` filtered by ``--llmeval-priority`` and
their ``groups`` added to the run spec's. Item names read ``mmlu:subject=anatomy[local/smollm2-135m-instruct]``
so ``-k`` selects by scenario, argument or model.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmeval.errors import ConfigError, LLMEvalError, UserModelError
from pytest_llmeval.gates import Gate
from pytest_llmeval.options import pick_limit
from pytest_llmeval.run_expanders import check_description
from pytest_llmeval.runspec import Description, expand_description
from pytest_llmeval.validation.eval_schemas import EVAL_FILE
from pytest_llmeval.validation.validator import check, read_document

if TYPE_CHECKING:
    from pytest_llmeval.extensions import Registries
    from pytest_llmeval.session import LLMEvalSession


@dataclass(frozen=True)
class RunEntry:
    description: Description
    priority: int | None
    gates: tuple[Gate, ...]
    index: int
    max_eval_instances: int | None = None  # a default that --llmeval-max-eval-instances overrides
    groups: tuple[str, ...] | None = None  # HELM's RunEntry.groups: added to the run spec's groups


def is_eval_file(path: Path, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)


def read_entries(path: Path, registries: Registries) -> list[RunEntry]:
    """Parse an eval file (YAML, or HOCON for ``.conf``); every problem names the file, the entry
    and the field.

    Its ``scenarios:`` section (user-defined scenarios) is registered first, into the collecting
    session's ``registries``, so two files of one session cannot declare the same name.
    """
    document = read_document(path)
    check(document, EVAL_FILE, path, named=("scenarios",))
    if document.get("scenarios") is not None:
        from pytest_llmeval.scenarios.custom import register_yaml_scenarios

        register_yaml_scenarios(path, document["scenarios"], registries)
    entries: list[RunEntry] = []
    for index, raw in enumerate(document["entries"]):
        if isinstance(raw, str):
            raw = {"description": raw}
        where = {"file": path, "entry": f"#{index} ({raw['description']!r})"}
        priority = raw.get("priority")
        limit = raw.get("max_eval_instances")
        groups_raw = raw.get("groups")
        groups = None if groups_raw is None else tuple([groups_raw] if isinstance(groups_raw, str) else groups_raw)
        gates_raw = raw.get("gates") or []
        if isinstance(gates_raw, str):
            gates_raw = [gates_raw]
        try:
            description = Description.parse(raw["description"])
            gates = tuple(Gate.parse(str(g)) for g in gates_raw)
        except ConfigError as exc:
            raise exc.located(field="description", **where) from None  # type: ignore[arg-type]
        # One entry may stand for several runs: `expand: {key: [values]}` and `subject=all`.
        expand = raw.get("expand")
        try:
            descriptions = expand_description(description, expand, registries)
        except ConfigError as exc:
            raise exc.located(field="expand", **where) from None  # type: ignore[arg-type]
        try:  # HELM's run expanders, checked when the file is read (stop=, prompt=, numbers, ...)
            for expanded in descriptions:
                check_description(expanded)
        except ConfigError as exc:
            raise exc.located(**where) from None  # type: ignore[arg-type]
        entries.extend(RunEntry(d, priority, gates, index, limit, groups) for d in descriptions)
    return entries


class EvalFile(pytest.File):
    """A YAML eval file or a HELM run-entry conf file."""

    def collect(self) -> Iterator[pytest.Item]:
        from pytest_llmeval.plugin import get_session

        session = get_session(self.config)
        for entry in read_entries(self.path, session.registries):
            if session.settings.priority is not None and entry.priority is not None \
                    and entry.priority > session.settings.priority:
                continue
            for expanded in self._task_items(entry, session):
                yield from self._items(expanded, session)

    def _task_items(self, entry: RunEntry, session: LLMEvalSession) -> list[RunEntry]:
        """An lm-eval group or tag entry stands for one entry per task in it (lm-eval's index)."""
        from pytest_llmeval.harness.entries import SCENARIO, expand_entry

        if entry.description.scenario != SCENARIO:
            return [entry]
        try:
            descriptions = expand_entry(entry.description, session.settings.lm_eval_include)
        except ConfigError as exc:
            raise ConfigError(exc.message, file=self.path, entry=f"#{entry.index} ({str(entry.description)!r})",
                              field=exc.field or "description") from None
        return [dataclasses.replace(entry, description=d) for d in descriptions]

    def _items(self, entry: RunEntry, session: LLMEvalSession) -> Iterator[pytest.Item]:
        """One item per deployment the entry's ``model=`` (or ``model_deployment=``) runs on; its
        name shows the model, or the deployment when that is not the model's default."""
        description = entry.description
        try:
            picks = session.entry_picks(description.get("model"), description.get("model_deployment"))
        except ConfigError as exc:
            field = "model_deployment" if description.get("model_deployment") else "model"
            raise ConfigError(str(exc) if exc.file else exc.message, file=self.path,
                              entry=f"#{entry.index} ({description!s})", field=field) from None
        base = description.without("model", "model_deployment")
        run_entry = dataclasses.replace(entry, description=description.without("model_deployment"))
        for pick in picks:
            yield RunItem.from_parent(self, name=f"{base}[{pick.label}]", entry=run_entry, model=pick.deployment)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, LLMEvalError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class GateFailure(AssertionError):
    """A gate's bound was not met."""


class LLMEvalItem(pytest.Item):
    """Base of the plugin's items: its own errors print as one short message, no traceback."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (GateFailure, LLMEvalError)):
            return f"{self.name}: {excinfo.value}" + _user_traceback(excinfo.value, self.config)
        return super().repr_failure(excinfo)


class RunItem(LLMEvalItem):
    """One run entry on one model."""

    def __init__(self, *, entry: RunEntry, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry = entry
        self.model = model
        description = entry.description
        self.keywords[description.scenario] = True
        self.keywords[model] = True
        for _, value in description.args:
            self.keywords[value] = True
        # A conf entry's HELM groups select it too (``-k lite_demo``); -k reads the extra matches.
        self.extra_keyword_matches.update(entry.groups or ())
        self.add_marker(pytest.mark.llmeval)

    def runtest(self) -> None:
        from pytest_llmeval.plugin import get_session
        from pytest_llmeval.report.collector import get_report
        from pytest_llmeval.report.run_records import scenario_key
        from pytest_llmeval.run_result import RunFailed
        from pytest_llmeval.session import check_gates, worker_id

        session = get_session(self.config)
        progress = _progress_printer(self)
        report = get_report(self.config)
        try:  # the run spec names the model: build_run_spec sets it from self.model
            limit = pick_limit(session.settings.max_eval_instances, self.entry.max_eval_instances)
            result = session.run_entry(self.entry.description, self.model, progress, limit, self.entry.groups)
        except RunFailed as exc:  # listed as an error with the requests it sent, then reported as usual
            report.run_error(self, exc.error, worker_id(), exc.result)
            raise exc.error from exc.error.__cause__  # keeps a user traceback for -v
        except Exception as exc:  # listed in the summary as an error, then reported as usual
            report.run_error(self, exc, worker_id())
            raise
        main = result.main_stat
        props = {
            "llmeval_run": result.run_spec.name,
            "llmeval_model": self.model,
            "llmeval_metric": result.run_spec.main_metric,
            "llmeval_value": main.mean if main else None,
            "llmeval_count": main.count if main else 0,
            "llmeval_requests": result.requests,
            "llmeval_cache_hits": result.cache_hits,
            "llmeval_seconds": round(result.seconds, 3),
            "llmeval_output": str(result.output_dir),
            "llmeval_worker": worker_id(),
            "llmeval_model_loads": session.handle(self.model).client.model_loads(),
        }
        self.user_properties.extend(props.items())
        value = "n/a"
        if main is not None and main.mean is not None:
            value = f"{main.mean:.4f} (n={main.count}, split {main.name.split})"
        self.add_report_section("call", "llmeval", (
            f"{result.run_spec.name}\n{result.run_spec.main_metric}: {value}\n"
            f"requests: {result.requests}, cache hits: {result.cache_hits}, {result.seconds:.1f} s\n"
            f"output: {result.output_dir}\n"))
        failures = report.finish_run(self, result, check_gates(result, list(self.entry.gates)), worker=worker_id(),
                                     scenario_key=scenario_key(self.entry.description, self.model))
        if failures:
            raise GateFailure("\n".join(failures))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.entry.index, f"{self.entry.description} on {self.model}"


def _user_traceback(error: BaseException, config: pytest.Config) -> str:
    """Under ``-v``, the traceback of a user's model code behind the error; else nothing."""
    cause = error.__cause__
    if not isinstance(error, UserModelError) or cause is None or config.get_verbosity() < 1:
        return ""
    return "\n\n" + "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)).rstrip()


def _progress_printer(item: pytest.Item) -> Any:
    """Progress lines for long runs when output is not captured (``-s``)."""
    if item.config.getoption("capture") != "no":
        return None

    def show(done: int, total: int) -> None:
        sys.stderr.write(f"\r{item.name}: {done}/{total} instances")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
