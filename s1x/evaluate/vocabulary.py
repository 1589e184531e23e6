"""Scans of a tokenizer's vocabulary for the tokens a budget mode acts on (reflection words, transition points)."""
from __future__ import annotations

from typing import Callable


def word_token_ids(tokenizer, words: list[str]) -> tuple[int, ...]:
    """Every token that reads as one of `words` on its own, whatever its case or leading space ("Wait", " wait",
    "WAIT"): what no_wait suppresses, so the model cannot spell the word another way with one token."""
    wanted = {word.strip().casefold() for word in words}
    return tokens_reading(tokenizer, lambda text: text.strip().casefold() in wanted)


def transition_token_ids(tokenizer, text: str) -> tuple[int, ...]:
    """Every token whose text holds `text` ("\n\n" alone, ".\n\n", ...): budget=schedule's transition points."""
    return tokens_reading(tokenizer, lambda token_text: text in token_text)


def tokens_reading(tokenizer, wanted: Callable[[str], bool]) -> tuple[int, ...]:
    """The ids of the vocabulary's non-special tokens whose decoded text is `wanted`."""
    special = set(tokenizer.all_special_ids)
    return tuple(token for token in range(len(tokenizer)) if token not in special and wanted(tokenizer.decode([token])))
