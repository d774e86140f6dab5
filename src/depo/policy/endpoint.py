"""`Generator` over an OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, llama.cpp, TGI, …).

Prompts go out concurrently (at most `max_concurrency` requests in flight); connection errors,
timeouts, 429 and 5xx are retried with exponential backoff. The API key is only ever put in the
`Authorization` header: never in logs, exceptions or `repr`.
"""
from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from depo.agent.prompting import Message
from depo.policy.base import Completion, GenerationConfig
from depo.policy.tokens import count_text_tokens

log = logging.getLogger(__name__)

API_KEY_ENV = "DEPO_ENDPOINT_API_KEY"
RETRYABLE_STATUS = {408, 429, 500, 502, 503, 504}


def api_key_from_env(variable: str = API_KEY_ENV) -> str | None:
    """The endpoint API key from the environment variable `variable`, or None when unset or empty."""
    return os.environ.get(variable) or None


class EndpointError(RuntimeError):
    """A request to the endpoint failed for good (after retries, or with a non-retryable status)."""


class EndpointGenerator:
    """Chat completions from a remote server; token counts come from the server's `usage`.

    With `n > 1` the server reports one `completion_tokens` total; it is split across the choices by
    re-counting each text with `tokenizer` when one is given, else in proportion to text length.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 3,
        timeout_s: float = 60.0,
        backoff_s: float = 0.5,
        tokenizer=None,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be non-negative, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        # Accept both `http://host:port` and `http://host:port/v1`.
        root = self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"
        self.url = f"{root}/chat/completions"
        self.model = model
        self.name = model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.tokenizer = tokenizer
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"EndpointGenerator(url={self.url!r}, model={self.model!r}, api_key={'set' if self._api_key else 'unset'})"

    def generate(self, prompts: list[list[Message]], config: GenerationConfig) -> list[list[Completion]]:
        if config.num_return_sequences < 1:
            raise ValueError(f"num_return_sequences must be at least 1, got {config.num_return_sequences}")
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(len(prompts), 1))) as pool:
            return list(pool.map(lambda messages: self._complete(messages, config), prompts))

    def _complete(self, messages: list[Message], config: GenerationConfig) -> list[Completion]:
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": config.max_new_tokens,
            # Greedy decoding is temperature 0 in the OpenAI API.
            "temperature": config.temperature if config.do_sample else 0.0,
            "top_p": config.top_p if config.do_sample else 1.0,
            "n": config.num_return_sequences,
            "seed": config.seed,
        }
        response = self._post(body)
        try:
            texts = [choice["message"]["content"] or "" for choice in response["choices"]]
        except (KeyError, TypeError) as error:
            raise EndpointError(f"malformed response from {self.url}: missing {error}") from None
        if len(texts) != config.num_return_sequences:
            raise EndpointError(
                f"{self.url} returned {len(texts)} choices for n={config.num_return_sequences}; "
                "the server must support the `n` parameter"
            )
        counts = self._token_counts(texts, (response.get("usage") or {}).get("completion_tokens"))
        return [Completion(text=text, n_tokens=count) for text, count in zip(texts, counts)]

    def _token_counts(self, texts: list[str], completion_tokens: int | None) -> list[int]:
        if completion_tokens is not None and len(texts) == 1:
            return [int(completion_tokens)]
        if self.tokenizer is not None:
            return [count_text_tokens(self.tokenizer, text) for text in texts]
        if completion_tokens is None:
            raise EndpointError(
                f"{self.url} reported no usage.completion_tokens; pass tokenizer= to count tokens locally"
            )
        return _split_proportionally(int(completion_tokens), [len(text) for text in texts])

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    return json.loads(reply.read())
            except urllib.error.HTTPError as error:
                detail = _error_detail(error)
                if error.code not in RETRYABLE_STATUS:
                    raise EndpointError(f"{self.url} answered HTTP {error.code}: {detail}") from None
                problem = f"HTTP {error.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                problem = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
            except json.JSONDecodeError:
                raise EndpointError(f"{self.url} answered with a body that is not JSON") from None
            if attempt < self.max_retries:
                delay = self.backoff_s * 2**attempt
                log.warning("%s failed (%s); retry %d/%d in %.2fs", self.url, problem, attempt + 1, self.max_retries, delay)
                time.sleep(delay)
        raise EndpointError(f"{self.url} failed after {self.max_retries + 1} attempts; last error {problem}")


def _error_detail(error: urllib.error.HTTPError) -> str:
    """A short reason from an error reply, for messages (the request and its headers are never echoed)."""
    try:
        text = error.read().decode(errors="replace")
    except OSError:
        text = ""
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text
    return (message or error.reason or "").strip()[:200]


def _split_proportionally(total: int, weights: list[int]) -> list[int]:
    """Integers summing to `total`, proportional to `weights` (largest remainders get the rest)."""
    weight_sum = sum(weights)
    if weight_sum == 0:
        weights, weight_sum = [1] * len(weights), len(weights)
    exact = [total * weight / weight_sum for weight in weights]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts
