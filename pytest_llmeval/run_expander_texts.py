"""The fixed texts HELM's run expanders put into prompts (``helm.benchmark.run_expander``), word for word.

Kept apart from the expanders' mechanics so the strings can be compared with HELM's at a glance.
"""

from __future__ import annotations

from pytest_llmeval.adapters.adapter_spec import ADAPT_GENERATION, ADAPT_MULTIPLE_CHOICE_JOINT
from pytest_llmeval.errors import ConfigError

# ``instructions=expert`` puts this before the scenario's instructions.
EXPERT_INSTRUCTIONS = "I am an expert AI assistant who is here to help you with the following. "

# ``prompt=<name>``: the prefixes and suffixes each preset sets (and ``human_assistant``'s stop).
PROMPTS: dict[str, dict[str, object]] = {
    "human_assistant": {"input_prefix": 'Human: What is the answer to "', "input_suffix": '"?\n',
                        "output_prefix": 'Assistant: The answer is "', "output_suffix": '".\n',
                        "stop_sequences": ('".',)},
    "question_answer": {"input_prefix": "Question: ", "output_prefix": "Answer: "},
    "qa": {"input_prefix": "Q: ", "output_prefix": "A: "},
    "input_output_html": {"input_prefix": "<input>", "input_suffix": "</input>\n", "output_prefix": "<output>",
                          "output_suffix": "</output>\n"},
    "input_output": {"input_prefix": "Input: ", "output_prefix": "Output: "},
    "i_o": {"input_prefix": "I: ", "output_prefix": "O: "},
}

# ``newline=<name>``: the regular-expression substitution run over the finished prompt.
NEWLINES: dict[str, tuple[str, str]] = {"semicolon": ("\n", ";\n"), "br": ("\n", "<br>\n")}

# ``stop=<name>``: HELM's stop sequence, also ended by a blank line between instances.
STOPS: dict[str, str] = {"hash": "###", "semicolon": ";", "br": "<br>"}

# ``follow_format_instructions=all|instruct``: the global prefix and suffix around the prompt.
IN_CONTEXT_LEARNING_INSTRUCTIONS_PREFIX = (
    "Here are some input-output examples. "
    + "Read the examples carefully to figure out the mapping. "
    + "The output of the last example is not given, "
    + "and your job is to figure out what it is."
)
IN_CONTEXT_LEARNING_INSTRUCTIONS_SUFFIX = (
    "Please provide the output to this last example. " + "It is critical to follow the format of the preceding outputs!"
)

_ARABIC = "اكتب حرف الإجابة فقط، دون أي إضافات أخرى."
_SINGLE_LETTER = "Answer with only a single letter."
_JOINT: dict[str, str] = {
    "mmlu_only_last_question": "Answer only the last question with only a single letter.",
    "mmlu": _SINGLE_LETTER,
    "mcqa": _SINGLE_LETTER,
    "mcqa_no_period": "Answer with only a single letter. Do not include a period in your answer.",
    "mcqa_only_last_question": "Answer only the last question with only a single letter.",
    "arabic_mcqa": _ARABIC,
}
_GENERATION: dict[str, str] = {
    "narrative_qa": "Answer with one word, a few-word phrase, or a short sentence. "
                    + "Avoid extra, unnecessary information in the answer.",
    "natural_qa": "Answer with a short answer or a boolean 'yes' or 'no' answer.",
    "natural_qa_short_answer": "Answer with a short answer.",
    "legalbench_abercrombie": "Answer with only 'generic', 'descriptive', 'suggestive', 'arbitrary' or 'fanciful'.",
    "legalbench_function_of_decision_section": "Answer with only 'Facts', 'Procedural History', 'Issue', 'Rule', "
                                               "'Analysis', 'Conclusion' or 'Decree'.",
    "legalbench_yes_or_no": "Answer with only 'Yes' or 'No'.",
    "wmt_14": "Answer with the English translation.",
    "wmt_14_only_last_sentence": "Answer with only the English translation for the last sentence.",
    "math": "Wrap the final answer with the \\boxed{} command.",
    "numeric_nlg": "Answer with only description of the last table as a single paragraph on a single line.",
    "tab_fact": "Answer with only the classification of the last statement, either 'refuted' or 'entailed'.",
    "wikitq": "Answer only the last question with a short answer. Avoid extra, unnecessary information in the answer.",
    "arabic_mcqa": _ARABIC,
}
# The part of a value HELM reads as options: ``mmlu_pro_suffix``, ``legalbench_no_prefix``.
SUFFIX_OPTION = "_suffix"
NO_PREFIX_OPTION = "_no_prefix"


def output_format_instructions(scenario: str, method: str, output_prefix: str) -> str:
    """HELM's ``OutputFormatInstructions`` text for ``scenario`` (options already removed) under
    ``method``: any name gets the one-letter line for joint multiple choice; generation knows a
    list of scenarios; other methods have none here."""
    where = f"output_format_instructions={scenario}"
    if method == ADAPT_MULTIPLE_CHOICE_JOINT:
        return _JOINT.get(scenario, _SINGLE_LETTER)
    if method != ADAPT_GENERATION:
        raise ConfigError(f"{where} applies to the {ADAPT_GENERATION} and {ADAPT_MULTIPLE_CHOICE_JOINT} methods "
                          f"(and HELM's chain-of-thought one), not to {method}", field="output_format_instructions")
    if scenario == "legalbench":
        noun = output_prefix.split(":")[0]
        return f"Answer with the {noun.lower()}." if noun != "Answer" else "Answer yes or no."
    if scenario not in _GENERATION:
        raise ConfigError(f"{where}: HELM has no output format instructions of that name for the {method} method; "
                          f"use one of legalbench, {', '.join(_GENERATION)}", field="output_format_instructions")
    return _GENERATION[scenario]
