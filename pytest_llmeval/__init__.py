"""pytest-llmeval: language-model evaluations as pytest test suites.

The public API is re-exported here; the modules behind it are private.
"""

from __future__ import annotations

from pytest_llmeval.adapters import AdapterSpec, ContextWindow, RequestState
from pytest_llmeval.clients import (
    CacheStore,
    CachingClient,
    CallableClient,
    Client,
    Credentials,
    FleetDown,
    PostgresCache,
    RequestCache,
)
from pytest_llmeval.errors import ClientError, ConfigError, DataNotFoundError, LLMEvalError
from pytest_llmeval.games import DialogueGameMaster, GameScorer, Player, PlayerModel, ScriptedModel
from pytest_llmeval.gates import Gate
from pytest_llmeval.metrics import MetricName, Stat
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.perturbations import Perturbation, PerturbationDescription
from pytest_llmeval.registry import DEFAULT_MODEL, ModelDeployment, ModelMetadata, Registry
from pytest_llmeval.report import RunRecord, Tolerance, get_report, mcnemar_exact_p, paired_bootstrap_p
from pytest_llmeval.requests import GeneratedOutput, Message, Request, RequestResult, Token
from pytest_llmeval.run_result import RunFailed, RunResult
from pytest_llmeval.runspec import Description, RunSpec, run_spec_function, value_expander
from pytest_llmeval.scenarios import Instance, Reference, Scenario
from pytest_llmeval.scenarios.boolq import BoolQScenario
from pytest_llmeval.scenarios.data import DataLocator, DataSource
from pytest_llmeval.scenarios.decorator import register_scenario, scenario
from pytest_llmeval.scenarios.gsm import GSM8KScenario
from pytest_llmeval.scenarios.synthetic_reasoning import SyntheticReasoningScenario
from pytest_llmeval.session import worker_id

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "AdapterSpec",
    "BoolQScenario",
    "CacheStore",
    "CachingClient",
    "CallableClient",
    "Client",
    "ClientError",
    "ConfigError",
    "ContextWindow",
    "Credentials",
    "DataLocator",
    "DataNotFoundError",
    "DataSource",
    "Description",
    "DialogueGameMaster",
    "FleetDown",
    "GSM8KScenario",
    "GameScorer",
    "Gate",
    "GeneratedOutput",
    "Instance",
    "LLMEvalError",
    "Message",
    "MetricName",
    "ModelDeployment",
    "ModelHandle",
    "ModelMetadata",
    "Perturbation",
    "PerturbationDescription",
    "Player",
    "PlayerModel",
    "PostgresCache",
    "Reference",
    "Registry",
    "Request",
    "RequestCache",
    "RequestResult",
    "RequestState",
    "RunFailed",
    "RunRecord",
    "RunResult",
    "RunSpec",
    "Scenario",
    "ScriptedModel",
    "Stat",
    "SyntheticReasoningScenario",
    "Token",
    "Tolerance",
    "__version__",
    "get_report",
    "mcnemar_exact_p",
    "paired_bootstrap_p",
    "register_scenario",
    "run_spec_function",
    "scenario",
    "value_expander",
    "worker_id",
]
