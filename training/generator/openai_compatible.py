"""Sampling from a server that speaks the OpenAI API: vLLM, SGLang, TGI, llama.cpp, ...

This is how a lab points the platform at the generator it serves on its own GPUs. Plain HTTP
(urllib): `POST {base_url}/chat/completions` (chat models, the default) or
`{base_url}/completions` (a plain text prompt), with `n`, `temperature`, `top_p`, `max_tokens`,
`seed` and `stop`.

Servers differ in what they honour. Some ignore `n` and return one choice (llama.cpp's Python
server does): the missing samples are then asked for one by one, each with its own seed. Each
request carries a seed, so a server that honours seeds gives the same samples again.
Connection errors, timeouts, 429 and 5xx answers are retried with a growing pause; any other
error stops the run with the server's own message.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from training.generator.prompt import TEXT_STOP, FewShotPrompt

logger = logging.getLogger(__name__)

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_STOP_STRINGS = 4  # the OpenAI API's limit; some servers refuse more


class OpenAICompatible:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        prompt: FewShotPrompt | None = None,
        api_key: str | None = None,
        endpoint: str = "chat",
        timeout: float = 300.0,
        max_retries: int = 3,
        retry_backoff: float = 1.0,
        max_n: int = 8,
        concurrency: int = 4,
        name: str = "",
    ) -> None:
        self.name = name or model
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise GeneratorError(
                f"generator {self.name}: base_url must be an http(s) URL such as "
                f"http://127.0.0.1:8000/v1, got {base_url!r}"
            )
        if endpoint not in ("chat", "completions"):
            raise GeneratorError(
                f"generator {self.name}: endpoint must be 'chat' or 'completions', got {endpoint!r}"
            )
        if not model:
            raise GeneratorError(f"generator {self.name}: give the served model's name (model)")
        if max_n < 1 or concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise GeneratorError(
                f"generator {self.name}: max_n and concurrency must be at least 1, "
                "max_retries at least 0 and timeout positive"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.prompt = prompt or FewShotPrompt()
        self.api_key = api_key
        self.endpoint = endpoint
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.max_n = max_n
        self.concurrency = concurrency

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "endpoint": self.endpoint,
        }

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ HTTP

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JSON request with retries; GeneratorError with a readable reason when it fails."""
        url = self._url(path)
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        attempt = 0
        while True:
            attempt += 1
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            retry_after: float | None = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                try:
                    return json.loads(raw)
                except json.JSONDecodeError as exc:
                    reason = f"{url} answered with something that is not JSON: {raw[:200]!r}"
                    raise GeneratorError(f"generator {self.name}: {reason}") from exc
            except urllib.error.HTTPError as exc:
                message = _server_message(exc)
                reason = f"{url} answered HTTP {exc.code}: {message}"
                if exc.code not in RETRY_STATUSES:
                    raise GeneratorError(f"generator {self.name}: {reason}") from exc
                retry_after = _retry_after(exc)
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, TimeoutError):
                    reason = f"no answer from {url} within {self.timeout:g} s"
                else:
                    reason = f"cannot reach {url}: {exc.reason}"
            except TimeoutError:
                reason = f"no answer from {url} within {self.timeout:g} s"
            except (ConnectionError, OSError) as exc:
                reason = f"connection to {url} failed: {exc}"
            if attempt > self.max_retries:
                tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                raise GeneratorError(f"generator {self.name}: {reason} ({tries})")
            pause = self.retry_backoff * 2 ** (attempt - 1)
            if retry_after is not None:
                pause = min(max(pause, retry_after), 60.0)
            logger.warning("generator %s: %s; retrying in %.1f s", self.name, reason, pause)
            time.sleep(pause)

    def check(self) -> list[str]:
        """The models the server serves (`GET /models`); fails early when it is unreachable."""
        data = self._call("GET", "models")
        models = [m.get("id", "") for m in data.get("data", []) if isinstance(m, dict)]
        return models

    # ------------------------------------------------------------------ sampling

    def _body(
        self, problem: str, params: SamplingParams, n: int, seed: int, prefix: str = ""
    ) -> dict[str, Any]:
        stops = list(params.stop) + ([] if self.endpoint == "chat" else list(TEXT_STOP))
        body: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": seed,
        }
        if stops:
            body["stop"] = stops[:MAX_STOP_STRINGS]
        if self.endpoint == "chat":
            if prefix:
                raise GeneratorError(
                    f"generator {self.name}: continuing a started answer (phase 1) needs the "
                    "completions endpoint (a chat endpoint cannot continue a reply)"
                )
            body["messages"] = self.prompt.messages(problem)
        else:
            body["prompt"] = self.prompt.text(problem) + prefix
        return body

    def _request(
        self, problem: str, params: SamplingParams, seeds: Sequence[int], prefix: str = ""
    ) -> list:
        path = "chat/completions" if self.endpoint == "chat" else "completions"
        data = self._call("POST", path, self._body(problem, params, len(seeds), seeds[0], prefix))
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise GeneratorError(
                f"generator {self.name}: {self._url(path)} returned no choices: "
                f"{json.dumps(data)[:300]}"
            )
        choices = sorted(choices, key=lambda c: c.get("index", 0))[: len(seeds)]
        usage = data.get("usage") or {}
        total = int(usage.get("completion_tokens") or 0)
        completions = []
        for position, choice in enumerate(choices):
            if self.endpoint == "chat":
                text = (choice.get("message") or {}).get("content") or ""
            else:
                text = choice.get("text") or ""
            reason = choice.get("finish_reason") or "stop"
            # Token counts come per request: split evenly, the remainder on the first sample.
            share = total // len(choices) + (total % len(choices) if position == 0 else 0)
            completions.append(
                Completion(
                    text=text,
                    finish_reason="length" if reason == "length" else "stop",
                    completion_tokens=share,
                )
            )
        return completions

    def _group(
        self, problem: str, params: SamplingParams, seeds: Sequence[int], prefix: str = ""
    ) -> list:
        completions = self._request(problem, params, seeds, prefix)
        # A server that ignores `n` answers once: ask for the rest, each with its own seed.
        for seed in seeds[len(completions) :]:
            completions.extend(self._request(problem, params, [seed], prefix))
        if params.force_answer:
            for position, (seed, completion) in enumerate(zip(seeds, completions, strict=True)):
                if needs_forced_answer(completion):
                    completions[position] = self._force_answer(
                        problem, params, seed, completion, prefix
                    )
        return completions

    def _force_answer(
        self,
        problem: str,
        params: SamplingParams,
        seed: int,
        completion: Completion,
        prefix: str = "",
    ) -> Completion:
        """Continue the sample after an appended `# Answer` marker (completions endpoint only:
        a chat endpoint cannot be asked to continue its own reply)."""
        if self.endpoint != "completions":
            raise GeneratorError(
                f"generator {self.name}: force_answer needs the completions endpoint"
            )
        body = self._body(problem, params, 1, seed ^ 0x5A5A5A5A, prefix)
        body["prompt"] += completion.text.rstrip() + FORCED_ANSWER_PREFIX
        body["max_tokens"] = FORCED_ANSWER_TOKENS
        body["stop"] = ["\n"]
        data = self._call("POST", "completions", body)
        choices = data.get("choices") or [{}]
        tokens = int((data.get("usage") or {}).get("completion_tokens") or 0)
        return with_forced_answer(completion, choices[0].get("text") or "", tokens)

    def sample(
        self,
        requests: Sequence[SampleRequest],
        params: SamplingParams,
        progress: Callable[[float], None] | None = None,
    ) -> list[list[Completion]]:
        groups = [
            (index, start, request.seeds[start : start + self.max_n])
            for index, request in enumerate(requests)
            for start in range(0, len(request.seeds), self.max_n)
        ]
        results: list[list[Completion | None]] = [[None] * len(r.seeds) for r in requests]
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            futures = [
                (
                    index,
                    start,
                    pool.submit(
                        self._group,
                        requests[index].problem,
                        params,
                        seeds,
                        requests[index].prefix,
                    ),
                )
                for index, start, seeds in groups
            ]
            for done, (index, start, future) in enumerate(futures, start=1):
                for offset, completion in enumerate(future.result()):
                    results[index][start + offset] = completion
                if progress is not None:
                    progress(done / len(futures))
        finally:
            # On the first failure, requests not sent yet are dropped.
            pool.shutdown(wait=True, cancel_futures=True)
        return results  # type: ignore[return-value]


def _server_message(error: urllib.error.HTTPError) -> str:
    try:
        raw = error.read()
    except OSError:
        return error.reason or ""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw[:300].decode("utf-8", "replace").strip() or str(error.reason)
    if isinstance(data, dict):
        detail = data.get("error", data.get("detail", data))
        if isinstance(detail, dict):
            detail = detail.get("message", detail)
        return str(detail)[:300]
    return str(data)[:300]


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
