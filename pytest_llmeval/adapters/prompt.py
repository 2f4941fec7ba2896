"""A prompt kept in its parts, so fitting the context window can drop in-context examples."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    """Instructions, training examples and the evaluated instance, joined by ``instance_prefix``
    between the global prefix and suffix, then HELM's ``substitutions`` (HELM's Prompt);
    ``truncated_text`` replaces it all when even zero examples did not fit."""

    instructions_block: str
    train_blocks: tuple[str, ...]
    eval_block: str
    instance_prefix: str = "\n"
    global_prefix: str = ""
    global_suffix: str = ""
    substitutions: tuple[tuple[str, str], ...] = ()
    truncated_text: str | None = None

    @property
    def text(self) -> str:
        if self.truncated_text is not None:
            return self.truncated_text
        blocks = ([self.instructions_block] if self.instructions_block else []) + [*self.train_blocks,
                                                                                    self.eval_block]
        text = self.global_prefix + self.instance_prefix.join(blocks) + self.global_suffix
        for source, target in self.substitutions:
            text = re.sub(source, target, text)
        return text

    @property
    def truncated(self) -> bool:
        return self.truncated_text is not None

    @property
    def num_train_instances(self) -> int:
        return len(self.train_blocks)

    def without_last_example(self) -> Prompt:
        return dataclasses.replace(self, train_blocks=self.train_blocks[:-1])

    def truncate(self, text: str) -> Prompt:
        return dataclasses.replace(self, truncated_text=text)
