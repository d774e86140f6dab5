"""A small OpenAI-compatible chat-completions server for a `PolicyModel` (stdlib only).

Serves `POST /v1/chat/completions` and `GET /v1/models` through `LocalGenerator`, so any
OpenAI-compatible client, including `EndpointGenerator`, can drive a local model:

    python -m depo.policy.serving --model data/06_models/bc_model --port 8000

It binds 127.0.0.1 by default. With `--api-key-env VAR` it requires `Authorization: Bearer $VAR`;
the key is read from the environment so it never shows in the process list or logs.
"""
from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from depo.policy.base import GenerationConfig, PolicyModel
from depo.policy.local import LocalGenerator

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 96
MAX_BODY_BYTES = 8 * 1024 * 1024


class RequestError(ValueError):
    """A client error, answered with HTTP 400 and this message."""


class PolicyServer:
    """Serves one model on `host:port` from a background thread; `port=0` picks a free port."""

    def __init__(
        self,
        policy: PolicyModel,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str | None = None,
        api_key: str | None = None,
        max_batch_size: int = 32,
    ):
        self.generator = LocalGenerator(policy, max_batch_size=max_batch_size, name=model_name)
        self.model_name = self.generator.name
        self._api_key = api_key
        # One generation at a time: concurrent requests queue here instead of fighting over the CPU.
        self._generate_lock = threading.Lock()
        self._http = ThreadingHTTPServer((host, port), _handler_class(self))
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "PolicyServer":
        self._thread = threading.Thread(target=self._http.serve_forever, name="depo-policy-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join()
        self._http.server_close()

    def __enter__(self) -> "PolicyServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def authorized(self, header: str | None) -> bool:
        if self._api_key is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self._api_key}".encode())

    def chat_completion(self, body: dict) -> dict:
        messages = _messages(body.get("messages"))
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens", DEFAULT_MAX_TOKENS))
        temperature = _number(body, "temperature", 1.0)
        config = GenerationConfig(
            max_new_tokens=_positive_int(max_tokens, "max_tokens"),
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else 1.0,
            top_p=_number(body, "top_p", 1.0),
            num_return_sequences=_positive_int(body.get("n", 1), "n"),
            seed=int(_number(body, "seed", 0)),
        )
        try:
            with self._generate_lock:
                (completions,) = self.generator.generate([messages], config)
        except ValueError as error:  # bad sampling parameters, rejected by the generator
            raise RequestError(str(error)) from None
        prompt_tokens = len(self.generator.prompt_ids(messages))
        completion_tokens = sum(c.n_tokens for c in completions)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": c.text},
                    # Fewer tokens than allowed means the model stopped on its own end token.
                    "finish_reason": "length" if c.n_tokens >= config.max_new_tokens else "stop",
                }
                for i, c in enumerate(completions)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _handler_class(server: PolicyServer) -> type[BaseHTTPRequestHandler]:
    class ChatCompletionsHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if not self._check_auth():
                return
            if self.path.rstrip("/") != "/v1/models":
                self._send_error(404, f"no route {self.path}")
                return
            self._send_json(
                200, {"object": "list", "data": [{"id": server.model_name, "object": "model", "owned_by": "depo"}]}
            )

        def do_POST(self) -> None:
            if not self._check_auth():
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_error(404, f"no route {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_BODY_BYTES:
                    raise RequestError(f"request body must be 1 to {MAX_BODY_BYTES} bytes, got {length}")
                try:
                    body = json.loads(self.rfile.read(length))
                except json.JSONDecodeError as error:
                    raise RequestError(f"request body is not JSON: {error}") from None
                if not isinstance(body, dict):
                    raise RequestError("request body must be a JSON object")
                self._send_json(200, server.chat_completion(body))
            except RequestError as error:
                self._send_error(400, str(error))
            except Exception:
                log.exception("chat completion failed")
                self._send_error(500, "internal error while generating")

        def _check_auth(self) -> bool:
            if server.authorized(self.headers.get("Authorization")):
                return True
            self._send_error(401, "missing or wrong API key")
            return False

        def _send_error(self, status: int, message: str) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._send_json(status, {"error": {"message": message, "type": kind}})

        def _send_json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:
            # The request line and status only; headers (and so the API key) are never logged.
            log.debug("%s %s", self.address_string(), format % args)

    return ChatCompletionsHandler


def _messages(value) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise RequestError("messages must be a non-empty list")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise RequestError(f"messages[{i}] must be an object with a string content")
        if message.get("role") not in ("system", "user", "assistant"):
            raise RequestError(f"messages[{i}].role must be system, user or assistant, got {message.get('role')!r}")
        messages.append({"role": message["role"], "content": message["content"]})
    return messages


def _number(body: dict, key: str, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{key} must be a number, got {value!r}")
    return float(value)


def _positive_int(value, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(f"{key} must be a positive integer, got {value!r}")
    return value


def main(argv: list[str] | None = None) -> None:
    from depo.policy.loading import load_policy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory or hub id")
    parser.add_argument("--gguf-file", default=None, help="GGUF file name inside --model")
    parser.add_argument("--name", default=None, help="model name reported to clients (default: --model)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--api-key-env", default=None, help="environment variable holding the required API key")
    args = parser.parse_args(argv)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            parser.error(f"--api-key-env: environment variable {args.api_key_env} is unset or empty")
    logging.basicConfig(level=logging.INFO)
    policy = load_policy(args.model, dtype=args.dtype, device=args.device, gguf_file=args.gguf_file)
    server = PolicyServer(
        policy, host=args.host, port=args.port, model_name=args.name or args.model, api_key=api_key,
        max_batch_size=args.max_batch_size,
    )
    log.info("serving %s at %s/v1/chat/completions", server.model_name, server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
