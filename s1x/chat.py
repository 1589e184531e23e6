"""The s1 chat format: one place that turns questions into prompts and traces into training pairs.

Assistant turn: think_start + thinking + "\\n" + answer_start + answer + end_of_turn. Training
masks everything before the assistant turn, so thinking and answer are what the model learns;
evaluation prompts end with think_start, as the paper's do.
"""
from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from s1x.config import ConfigError, ModelConfig

IGNORE_INDEX = -100


@dataclass
class S1Format:
    tokenizer: PreTrainedTokenizerBase
    markers: ModelConfig

    def __post_init__(self) -> None:
        ids = self.tokenizer.encode(self.markers.think_end, add_special_tokens=False)
        if len(ids) != 1:
            raise ConfigError(
                f"model.think_end={self.markers.think_end!r} must be one token of the tokenizer, got {len(ids)}"
            )
        self.think_end_id: int = ids[0]
        self.end_of_turn_id: int = self.tokenizer.convert_tokens_to_ids(self.markers.end_of_turn)

    def chat_prefix(self, question: str) -> str:
        """System and user turns, ending with the opened assistant turn."""
        messages = [{"role": "system", "content": self.markers.system_prompt}, {"role": "user", "content": question}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def prompt(self, question: str, instruction: str = "", think_prefix: str = "") -> str:
        """The evaluation prompt; an instruction (a budget baseline) follows the question, and a
        think prefix (token forcing) opens the thinking."""
        user = f"{question}\n\n{instruction}" if instruction else question
        return self.chat_prefix(user) + self.markers.think_start + think_prefix

    def completion(self, thinking: str, answer: str) -> str:
        m = self.markers
        return f"{m.think_start}{thinking.strip()}\n{m.answer_start}{answer.strip()}{m.end_of_turn}"

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def training_example(self, question: str, thinking: str, answer: str) -> dict[str, list[int]]:
        """input_ids and labels, with labels = IGNORE_INDEX on every token before the assistant part."""
        prefix = self.encode(self.chat_prefix(question))
        completion = self.encode(self.completion(thinking, answer))
        return {"input_ids": prefix + completion, "labels": [IGNORE_INDEX] * len(prefix) + completion}
