"""An Ollama Modelfile whose template is s1x's evaluation prompt, so `ollama run` thinks the way s1x evaluated.

The template is the prompt s1x builds for a question (system turn, user turn, the opened assistant turn and
the think-start marker), with the question replaced by Ollama's `{{ .Prompt }}`; the model then thinks, emits
the end-of-thinking delimiter, opens its answer and ends its turn. Stops are the tokens that end the turn in
s1x's evaluation, never the end-of-thinking delimiter (that would cut every answer off).
"""
from __future__ import annotations

import json

from s1x.chat import S1Format

PROMPT = "{{ .Prompt }}"
QUESTION_SLOT = "\x00question\x00"  # stands where the question goes while s1x builds the prompt


def template(fmt: S1Format) -> str:
    return fmt.prompt(QUESTION_SLOT).replace(QUESTION_SLOT, PROMPT)


def render(template_text: str, question: str) -> str:
    """What Ollama sends the model for a question: the template with its prompt filled in."""
    return template_text.replace(PROMPT, question)


def stop_words(fmt: S1Format) -> list[str]:
    ids = dict.fromkeys([fmt.end_of_turn_id, fmt.tokenizer.eos_token_id])
    return [fmt.tokenizer.convert_ids_to_tokens(i) for i in ids if i is not None]


def modelfile(fmt: S1Format, gguf_name: str, temperature: float = 0.0) -> str:
    """The Modelfile text: FROM the GGUF beside it, the s1 template, its stops, greedy as s1x evaluates."""
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{template(fmt)}"""']
    lines += [f"PARAMETER stop {json.dumps(word)}" for word in stop_words(fmt)]
    lines.append(f"PARAMETER temperature {temperature}")
    return "\n".join(lines) + "\n"
