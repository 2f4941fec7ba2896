"""lm-evaluation-harness tasks as pytest items, run by lm-eval's own code on our clients.

``lm_eval:task=hellaswag`` names a task (or a group, which collects one item per task in it).
lm-eval builds the task (its ``TaskManager``, configs, prompts, few-shot sampling, filters,
metrics and aggregation); :class:`~pytest_llmeval.harness.lm.ClientLM` is the model it talks
to, which sends every request through our cached, batching clients. Importing this package
does not import lm-eval: that happens when an lm-eval entry is collected or run.
"""

from __future__ import annotations
