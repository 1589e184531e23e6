"""The transformers engine: a list of budget-forcing requests in, new token ids out; forcing in rounds."""
from __future__ import annotations

from itertools import groupby

import torch
from transformers import GenerationConfig, PreTrainedTokenizerBase

from s1x.evaluate.budget import Request, SampleState, run_forcing
from s1x.evaluate.engines import Engine, OnRound


class HFEngine(Engine):
    """transformers `generate`, batched with left padding; requests sharing stop tokens run together."""

    def __init__(self, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, batch_size: int,
                 temperature: float) -> None:
        self.model = model.eval()
        self.pad_id = tokenizer.pad_token_id
        self.batch_size = batch_size
        self.temperature = temperature

    def force(self, states: list[SampleState], seed: int = 0, on_round: OnRound = lambda done: None) -> None:
        run_forcing(lambda requests: self.generate(requests, seed), states, on_round, self)

    @torch.inference_mode()
    def entropy(self, contexts: list[list[int]]) -> list[float]:
        values: list[float] = []
        for start in range(0, len(contexts), self.batch_size):
            input_ids, attention_mask = self._left_padded(contexts[start:start + self.batch_size])
            # Positions as generate gives them: left padding must not shift the real tokens'.
            positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions).logits
            values += torch.special.entr(torch.softmax(logits[:, -1].float(), dim=-1)).sum(-1).tolist()
        return values

    @torch.inference_mode()
    def confidences(self, contexts: list[list[int]], starts: list[int], top_k: int) -> list[list[float]]:
        values: list[list[float]] = []
        for first in range(0, len(contexts), self.batch_size):
            batch, begins = contexts[first:first + self.batch_size], starts[first:first + self.batch_size]
            input_ids, attention_mask = self._left_padded(batch)
            positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions).logits
            top = torch.log_softmax(logits.float(), dim=-1).topk(top_k, dim=-1).values.mean(-1).neg()
            width = input_ids.shape[1]
            for row, (ids, start) in enumerate(zip(batch, begins)):
                offset = width - len(ids)  # the distribution a token was drawn from sits one position before it
                values.append(top[row, offset + start - 1: width - 1].tolist())
        return values

    def close(self) -> None:
        """Let the model go, and the GPU memory it held."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def generate(self, requests: list[Request], seed: int = 0) -> list[list[int]]:
        outputs: list[list[int]] = [[] for _ in requests]
        # Sorting by stop and suppressed sets, then length, keeps batches uniform and padding short.
        kind = lambda i: (requests[i].stop_ids, requests[i].suppress_ids)  # noqa: E731
        order = sorted(range(len(requests)), key=lambda i: (kind(i), len(requests[i].prompt_ids)))
        for _, group in groupby(order, key=kind):
            group = list(group)
            for start in range(0, len(group), self.batch_size):
                batch = group[start:start + self.batch_size]
                for i, ids in zip(batch, self._generate_batch([requests[i] for i in batch], seed)):
                    outputs[i] = ids
        return outputs

    def _left_padded(self, contexts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(ids) for ids in contexts)
        device = self.model.device  # with a device map: where the embeddings are
        input_ids = torch.full((len(contexts), width), self.pad_id, dtype=torch.long, device=device)
        attention_mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(contexts):
            input_ids[row, width - len(ids):] = torch.tensor(ids, device=device)
            attention_mask[row, width - len(ids):] = 1
        return input_ids, attention_mask

    @torch.inference_mode()
    def _generate_batch(self, requests: list[Request], seed: int) -> list[list[int]]:
        input_ids, attention_mask = self._left_padded([r.prompt_ids for r in requests])
        width = input_ids.shape[1]
        stop_ids = list(requests[0].stop_ids)
        config = GenerationConfig(
            max_new_tokens=max(r.max_new_tokens for r in requests),
            do_sample=self.temperature > 0,
            temperature=self.temperature if self.temperature > 0 else None,
            top_p=None, top_k=None,
            eos_token_id=stop_ids,
            pad_token_id=self.pad_id,
            suppress_tokens=list(requests[0].suppress_ids) or None,
        )
        if self.temperature > 0:
            torch.manual_seed(seed)
        out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
        results = []
        for row, r in enumerate(requests):
            new = out[row, width:].tolist()[: r.max_new_tokens]
            stop_at = next((k for k, t in enumerate(new) if t in stop_ids), None)
            results.append(new if stop_at is None else new[: stop_at + 1])
        return results
