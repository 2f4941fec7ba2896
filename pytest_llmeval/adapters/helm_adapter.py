"""HELM's own adapter, for a HELM run spec whose method our adapters do not implement.

``language_modeling``, ``multiple_choice_separate_calibrated``, ``ranking_binary``, chat and the
others: HELM's ``AdapterFactory`` builds the adapter, with a tokenizer service that answers
with the deployment's tokenizer (:mod:`pytest_llmeval.clients.helm_services`), and turns the
instances (HELM's own, with their perturbations) into HELM's request states. Those become ours,
so the requests go through our clients (batched, cached) like any other run's; HELM's request
states are kept for HELM's metrics (their ``num_conditioning_tokens``, for one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.requests import Message, Request
from pytest_llmeval.scenarios.helm_scenarios import from_helm_instance, to_helm_instance

if TYPE_CHECKING:
    from pytest_llmeval.adapters.context_window import ContextWindow
    from pytest_llmeval.runspec import RunSpec
    from pytest_llmeval.scenarios.helm_scenarios import HelmBridge
    from pytest_llmeval.scenarios.scenario import Instance


def from_helm_request(request: Any) -> Request:
    """Ours for HELM's request; a field our clients cannot send is one clear error."""
    if request.multimodal_prompt is not None or request.embedding or request.image_generation_parameters:
        raise ConfigError("HELM's adapter built a multimodal, embedding or image request; our clients send text")
    messages = None if request.messages is None else tuple(Message(str(m["role"]), str(m["content"]))
                                                          for m in request.messages)
    return Request(model_deployment=request.model_deployment, model=request.model, prompt=request.prompt,
                   messages=messages, temperature=request.temperature, max_tokens=request.max_tokens,
                   num_completions=request.num_completions, top_k_per_token=request.top_k_per_token,
                   stop_sequences=tuple(request.stop_sequences), echo_prompt=request.echo_prompt,
                   top_p=request.top_p)


def helm_adapt(run_spec: RunSpec, bridge: HelmBridge, instances: list[Instance],
               window: ContextWindow | None) -> list[RequestState]:
    """HELM's adapter over the instances; our request states, HELM's kept in ``bridge``."""
    from helm.benchmark.adaptation.adapters.adapter_factory import AdapterFactory

    helm_spec = bridge.helm_adapter_spec(run_spec.adapter_spec)
    try:
        adapter = AdapterFactory.get_adapter(helm_spec, bridge.tokenizer_service(window))
    except ValueError as exc:
        raise ConfigError(f"{run_spec.name}: crfm-helm has no adapter for method {helm_spec.method!r} ({exc})",
                          field="method") from None
    helm_instances = [to_helm_instance(i) for i in instances]
    helm_states = adapter.adapt(helm_instances, 1)
    ours = {id(h): i for h, i in zip(helm_instances, instances)}
    states = []
    for helm_state in helm_states:
        instance = ours.get(id(helm_state.instance)) or from_helm_instance(helm_state.instance)
        states.append(RequestState(
            instance=instance, train_trial_index=helm_state.train_trial_index,
            request=from_helm_request(helm_state.request), num_train_instances=helm_state.num_train_instances,
            output_mapping=helm_state.output_mapping, prompt_truncated=helm_state.prompt_truncated,
            reference_index=helm_state.reference_index, request_mode=helm_state.request_mode))
    bridge.adapted_states = list(helm_states)
    return states
