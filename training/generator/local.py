"""Sampling from a local Hugging Face causal LM, batched, with a KV cache.

How it saves work over calling `generate` once per prompt:
- the part of the prompt every problem shares (instruction and worked examples) is run through
  the model once and its KV cache reused for every problem;
- each problem's own tokens are run once, however many samples it gets: the cache is copied
  to one row per sample;
- all samples of a batch decode together, one token per step; a sample that finished leaves
  the batch at once instead of riding along until the longest one ends.
Every sample draws from its own random generator seeded with its own seed, so what a sample says
depends on its seed and prompt, not on what else was in the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.generator.base import (
    FORCED_ANSWER_PREFIX,
    FORCED_ANSWER_TOKENS,
    Completion,
    GeneratorError,
    SampleRequest,
    SamplingParams,
    needs_forced_answer,
    with_forced_answer,
)
from training.generator.parse import answer_complete
from training.generator.prompt import TEXT_STOP, FewShotPrompt

# Tokens of decoded tail searched for stop strings after each token.
_STOP_TAIL_TOKENS = 16


class LocalCausalLM:
    """A causal LM loaded from a local directory (never from a hub)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        prompt: FewShotPrompt | None = None,
        chat: bool | None = None,
        device: str = "auto",
        max_batch_rows: int = 32,
        name: str = "",
    ) -> None:
        self.model_path = Path(model_path)
        if not (self.model_path / "config.json").is_file():
            raise GeneratorError(
                f"generator {name or self.model_path}: {self.model_path} is not a local model "
                "directory (no config.json)"
            )
        if max_batch_rows < 1:
            raise GeneratorError(f"generator {name}: max_batch_rows must be at least 1")
        self.prompt = prompt or FewShotPrompt()
        self.name = name or self.model_path.name
        self.max_batch_rows = max_batch_rows
        self._chat = chat
        self._device = device
        self._model = None
        self._tokenizer = None
        self._eos: set[int] = set()
        self._prefix: tuple[list[int], list[tuple[Any, Any]]] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self._device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                self.model_path, local_files_only=True, dtype=dtype
            )
        except (OSError, ValueError) as exc:
            raise GeneratorError(
                f"generator {self.name}: cannot load {self.model_path}: {exc}"
            ) from exc
        model.to(device).eval()
        self._model, self._tokenizer, self.device = model, tokenizer, device
        if self._chat is None:
            self._chat = bool(getattr(tokenizer, "chat_template", None))
        eos = model.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None:
            eos.append(tokenizer.eos_token_id)
        self._eos = set(eos)
        if not self._eos:
            raise GeneratorError(f"generator {self.name}: the model has no end-of-text token")

    @property
    def chat(self) -> bool:
        self._load()
        return bool(self._chat)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "local",
            "model": str(self.model_path),
            "chat_template": self._chat,
        }

    def close(self) -> None:
        self._model = self._tokenizer = None
        self._prefix = None

    # ------------------------------------------------------------------ prompts

    def prompt_ids(self, problem: str) -> list[int]:
        self._load()
        if self._chat:
            text = self._tokenizer.apply_chat_template(
                self.prompt.messages(problem), add_generation_prompt=True, tokenize=False
            )
            # The template writes any special tokens itself.
            return self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._tokenizer(self.prompt.text(problem))["input_ids"]

    def stop_strings(self, params: SamplingParams) -> tuple[str, ...]:
        self._load()
        return tuple(params.stop) + (() if self._chat else TEXT_STOP)

    def _shared_prefix(self) -> list[int]:
        """Tokens every problem's prompt starts with: those two unlike problems share."""
        a, b = self.prompt_ids("12"), self.prompt_ids("Why?")
        length = 0
        while length < min(len(a), len(b)) and a[length] == b[length]:
            length += 1
        return a[:length]

    def _prefix_cache(self) -> tuple[list[int], list[tuple[Any, Any]]]:
        if self._prefix is None:
            import torch

            ids = self._shared_prefix()
            layers: list[tuple[Any, Any]] = []
            if ids:
                with torch.inference_mode():
                    out = self._model(
                        input_ids=torch.tensor([ids], device=self.device), use_cache=True
                    )
                layers = [(keys, values) for keys, values, *_ in out.cache]
            self._prefix = (ids, layers)
        return self._prefix

    # ------------------------------------------------------------------ sampling

    def sample(
        self,
        requests: Sequence[SampleRequest],
        params: SamplingParams,
        progress: Callable[[float], None] | None = None,
    ) -> list[list[Completion]]:
        with self._lock:  # one model, one batch at a time
            self._load()
            prompts = [
                self.prompt_ids(request.problem)
                + (
                    self._tokenizer(request.prefix, add_special_tokens=False)["input_ids"]
                    if request.prefix
                    else []
                )
                for request in requests
            ]
            rows = [
                (index, position, seed)
                for index, request in enumerate(requests)
                for position, seed in enumerate(request.seeds)
            ]
            results: list[list[Completion | None]] = [[None] * len(r.seeds) for r in requests]
            batches = max(1, -(-len(rows) // self.max_batch_rows))
            for number, start in enumerate(range(0, len(rows), self.max_batch_rows)):
                chunk = rows[start : start + self.max_batch_rows]

                def on_step(step: int, number: int = number) -> None:
                    if progress is not None:
                        progress((number + step / params.max_new_tokens) / batches)

                completions = self._generate(
                    [prompts[i] for i, _, _ in chunk], chunk, params, on_step
                )
                for (index, position, _), completion in zip(chunk, completions, strict=True):
                    results[index][position] = completion
            if params.force_answer:
                self._force_answers(prompts, rows, results, params)
            return results  # type: ignore[return-value]

    def _force_answers(self, prompts, rows, results, params: SamplingParams) -> None:
        """Second pass: samples that stopped without an answer marker get one, and the model
        writes the answer line after it (each with its own generator, seeded from its seed)."""
        todo = [
            (index, position, seed)
            for index, position, seed in rows
            if needs_forced_answer(results[index][position])
        ]
        answer_params = SamplingParams(
            temperature=params.temperature,
            top_p=params.top_p,
            max_new_tokens=FORCED_ANSWER_TOKENS,
            stop=("\n",),
        )
        for start in range(0, len(todo), self.max_batch_rows):
            chunk = todo[start : start + self.max_batch_rows]
            continued = [
                prompts[index]
                + self._tokenizer(
                    results[index][position].text.rstrip() + FORCED_ANSWER_PREFIX,
                    add_special_tokens=False,
                )["input_ids"]
                for index, position, _ in chunk
            ]
            # One row per sample: each continues its own text.
            answer_rows = [(slot, 0, seed ^ 0x5A5A5A5A) for slot, (_, _, seed) in enumerate(chunk)]
            answers = self._generate(continued, answer_rows, answer_params)
            for (index, position, _), answer in zip(chunk, answers, strict=True):
                results[index][position] = with_forced_answer(
                    results[index][position], answer.text, answer.completion_tokens
                )

    def _prefill(self, ids: list[int]):
        """Run one prompt (reusing the shared prefix's cache): last logits and per-layer KV."""
        import torch
        from transformers import DynamicCache

        prefix_ids, prefix_layers = self._prefix_cache()
        shared = len(prefix_ids)
        if not (0 < shared < len(ids) and ids[:shared] == prefix_ids):
            shared = 0
        cache = DynamicCache(ddp_cache_data=prefix_layers) if shared else DynamicCache()
        out = self._model(
            input_ids=torch.tensor([ids[shared:]], device=self.device),
            cache=cache,
            use_cache=True,
        )
        return out.logits[0, -1], [(keys, values) for keys, values, *_ in out.cache]

    def _generate(
        self,
        row_prompts: list[list[int]],
        rows: list[tuple[int, int, int]],
        params: SamplingParams,
        on_step: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        import torch
        from transformers import DynamicCache

        stops = self.stop_strings(params)
        tokenizer = self._tokenizer
        with torch.inference_mode():
            # 1. Each distinct prompt once.
            distinct: dict[int, int] = {}  # request index -> slot
            for index, _, _ in rows:
                distinct.setdefault(index, len(distinct))
            slot_ids = [None] * len(distinct)
            for (index, _, _), ids in zip(rows, row_prompts, strict=True):
                slot_ids[distinct[index]] = ids
            prefilled = [self._prefill(ids) for ids in slot_ids]

            # 2. One cache row per sample, left-padded to a common length. Pad slots hold zeros
            #    and are masked; positions stay each prompt's own, so padding changes nothing.
            longest = max(len(ids) for ids in slot_ids)
            row_slot = torch.tensor([distinct[index] for index, _, _ in rows], device=self.device)
            layers = []
            for layer in range(len(prefilled[0][1])):
                keys, values = [], []
                for _, kv in prefilled:
                    pad = longest - kv[layer][0].shape[-2]
                    keys.append(torch.nn.functional.pad(kv[layer][0], (0, 0, pad, 0)))
                    values.append(torch.nn.functional.pad(kv[layer][1], (0, 0, pad, 0)))
                layers.append((torch.cat(keys)[row_slot], torch.cat(values)[row_slot]))
            cache = DynamicCache(ddp_cache_data=layers)
            lengths = torch.tensor([len(ids) for ids in row_prompts], device=self.device)
            mask = (
                torch.arange(longest, device=self.device)[None, :] >= longest - lengths[:, None]
            ).long()
            positions = lengths.clone()
            logits = torch.stack([logits for logits, _ in prefilled])[row_slot]
            del prefilled, layers

            # 3. Decode; finished samples leave the batch.
            generators = []
            for _, _, seed in rows:
                generator = torch.Generator(device=self.device)
                generator.manual_seed(seed)
                generators.append(generator)
            tokens: list[list[int]] = [[] for _ in rows]
            finish: list[str | None] = [None] * len(rows)
            marked = [False] * len(rows)
            active = list(range(len(rows)))
            for step in range(params.max_new_tokens):
                chosen = self._choose(logits, [generators[r] for r in active], params)
                keep = []
                for slot, row in enumerate(active):
                    token = chosen[slot]
                    if token in self._eos:
                        finish[row] = "stop"
                        continue
                    tokens[row].append(token)
                    tail = tokenizer.decode(tokens[row][-_STOP_TAIL_TOKENS:])
                    if any(stop in tail for stop in stops):
                        finish[row] = "stop"
                        continue
                    # Past a finished answer line the parser reads nothing more: stop there.
                    # (Checked at line ends once the sample has written a `#`.)
                    marked[row] = marked[row] or "#" in tail
                    if marked[row] and "\n" in tokenizer.decode(tokens[row][-1:]):
                        if answer_complete(tokenizer.decode(tokens[row])):
                            finish[row] = "stop"
                            continue
                    if step + 1 == params.max_new_tokens:
                        finish[row] = "length"
                        continue
                    keep.append(slot)
                if on_step is not None:
                    on_step(step + 1)
                if not keep:
                    break
                if len(keep) < len(active):
                    index = torch.tensor(keep, device=self.device)
                    cache.batch_select_indices(index)
                    mask, positions = mask[index], positions[index]
                active = [active[slot] for slot in keep]
                last = torch.tensor([[tokens[row][-1]] for row in active], device=self.device)
                mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
                out = self._model(
                    input_ids=last,
                    attention_mask=mask,
                    position_ids=positions[:, None],
                    cache=cache,
                    use_cache=True,
                )
                positions = positions + 1
                logits = out.logits[:, -1]

        completions = []
        for row in range(len(rows)):
            text = tokenizer.decode(tokens[row], skip_special_tokens=True)
            for stop in stops:
                at = text.find(stop)
                if at >= 0:
                    text = text[:at]
            completions.append(
                Completion(
                    text=text,
                    finish_reason=finish[row] or "length",
                    completion_tokens=len(tokens[row]),
                )
            )
        return completions

    @staticmethod
    def _choose(logits, generators, params: SamplingParams) -> list[int]:
        """Next token of each row: greedy at temperature 0, else top-p sampling."""
        import torch

        logits = logits.float()
        if params.temperature == 0:
            return logits.argmax(dim=-1).tolist()
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            # Keep the smallest set whose mass reaches top_p (the first token always stays).
            outside = sorted_probs.cumsum(dim=-1) - sorted_probs > params.top_p
            sorted_probs = sorted_probs.masked_fill(outside, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        return [
            int(torch.multinomial(probs[i], 1, generator=generator))
            for i, generator in enumerate(generators)
        ]
