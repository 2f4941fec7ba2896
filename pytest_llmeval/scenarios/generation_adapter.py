"""HELM's generation adapter spec (``get_generation_adapter_spec``): ``Noun: text`` blocks."""

from __future__ import annotations

from pytest_llmeval.adapters.adapter_spec import ADAPT_GENERATION, AdapterSpec


def _prefix(noun: str | None, newline: bool) -> str:
    if noun is None:
        return ""
    return f"{noun}:" + ("\n" if newline else " ")


def generation_adapter(*, instructions: str = "", input_noun: str | None = None,
                       newline_after_input_noun: bool = False, output_noun: str | None = None,
                       max_train_instances: int = 5, max_tokens: int = 5,
                       stop_sequences: tuple[str, ...] = ("\n",), num_outputs: int = 1,
                       temperature: float = 0.0) -> AdapterSpec:
    """``[instructions]`` then ``Input: x`` / ``Output: y`` blocks, the last one left open.

    HELM stores instructions with a trailing newline; ``build_prompt`` adds that newline here.
    """
    return AdapterSpec(
        method=ADAPT_GENERATION, instructions=instructions,
        input_prefix=_prefix(input_noun, newline_after_input_noun), input_suffix="\n",
        output_prefix=_prefix(output_noun, False), output_suffix="\n", instance_prefix="\n",
        max_train_instances=max_train_instances, num_outputs=num_outputs, max_tokens=max_tokens,
        temperature=temperature, stop_sequences=stop_sequences,
    )
