"""A small OpenAI-compatible chat server for the LLM tests and benchmark: replies, faults, a log.

::

    with FakeServer(faults={"hello": ["429", "500"]}) as server:
        llm = LLM(LLMArgs(model="m", base_url=server.base_url, ...))
        llm.complete([[{"role": "user", "content": "hello"}]])
    [r.outcome for r in server.log]     # ['429', '500', 'ok']

As a program it serves until killed, for the benchmark (``benchmarks/synth.py``), printing its
base URL first; ``GET /stats`` returns what :meth:`FakeServer.stats` does::

    python tests/llm_server.py --latency 0.2

The reply to a chat is a pure function of the model and the messages (:func:`reply_for`, or
the ``responder`` given), so a test can check every result without a model. Faults are planned
per prompt (the last message's content): the n-th request for that prompt gets the n-th fault
of its list, later ones succeed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Fault kinds a plan may list.
FAULTS = (
    "429", "500", "503", "timeout", "malformed", "empty", "no_content", "disconnect", "400", "401",
)  # fmt: skip


def reply_for(model: str, messages: list[dict]) -> str:
    """The server's deterministic answer to a chat."""
    digest = hashlib.sha256(json.dumps([model, messages], sort_keys=True).encode()).hexdigest()
    return f"Answer {digest[:8]} to: {messages[-1]['content']}"


def tokens_of(text: str) -> int:
    """The server's token count: whitespace words, so that tests can compute it too."""
    return len(text.split())


def usage_for(
    model: str, messages: list[dict], responder: Callable[[str, list[dict]], str] = reply_for
) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) the server reports for a chat."""
    prompt = sum(tokens_of(m["content"]) for m in messages)
    return prompt, tokens_of(responder(model, messages))


@dataclass
class Request:
    prompt: str  # the last message's content
    body: dict
    outcome: str  # "ok" or the fault served
    started: float
    finished: float = 0.0


class FakeServer:
    """A threaded server on 127.0.0.1 (a free port) serving ``POST /v1/chat/completions``."""

    def __init__(
        self,
        faults: dict[str, list[str]] | None = None,
        latency_s: float = 0.0,
        hang_s: float = 2.0,
        usage: bool = True,
        port: int = 0,
        responder: Callable[[str, list[dict]], str] = reply_for,
    ) -> None:
        unknown = {f for plan in (faults or {}).values() for f in plan} - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.faults = {prompt: list(plan) for prompt, plan in (faults or {}).items()}
        self.latency_s = latency_s
        self.hang_s = hang_s  # how long a "timeout" fault sleeps: longer than the client waits
        self.usage = usage
        self.responder = responder  # (model, messages) -> the reply's text
        self.log: list[Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._stats_from = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def ok(self) -> list[Request]:
        """The requests that got a good reply."""
        return [r for r in self.log if r.outcome == "ok"]

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stats(self) -> dict:
        """Since the last call: the requests answered, the most in flight at once, and the
        mean seconds from a request's body read to its answer written."""
        with self._lock:
            recent = [r for r in self.log[self._stats_from :] if r.finished]
            stats = {
                "requests": len(recent),
                "max_in_flight": self.max_in_flight,
                "mean_seconds": sum(r.finished - r.started for r in recent) / max(1, len(recent)),
            }
            self.max_in_flight = self.in_flight
            self._stats_from = len(self.log)
        return stats

    def _begin(self, body: dict) -> Request:
        prompt = body["messages"][-1]["content"]
        with self._lock:
            plan = self.faults.get(prompt)
            outcome = plan.pop(0) if plan else "ok"
            request = Request(prompt, body, outcome, time.monotonic())
            self.log.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return request

    def _end(self, request: Request) -> None:
        with self._lock:
            self.in_flight -= 1
            request.finished = time.monotonic()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a "timeout" handler may still sleep when the test stops the server
    request_queue_size = 256  # the default 5 drops connections when 64 clients open at once
    owner: FakeServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers and the client's pool expect
    disable_nagle_algorithm = True  # else the body waits ~40 ms for the ACK of the headers
    server: _Server

    def log_message(self, *args) -> None:  # quiet: the log is FakeServer.log
        pass

    def do_GET(self) -> None:
        if self.path == "/stats":
            self._send(200, self.server.owner.stats())
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        owner = self.server.owner
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        request = owner._begin(body)
        try:
            self._serve(owner, request, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on this request (its timeout): nothing to answer
        finally:
            owner._end(request)

    def _serve(self, owner: FakeServer, request: Request, body: dict) -> None:
        if owner.latency_s:
            time.sleep(owner.latency_s)
        outcome = request.outcome
        if outcome == "429":
            self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        elif outcome in ("400", "401", "500", "503"):
            self._send(int(outcome), {"error": {"message": f"fault {outcome}"}})
        elif outcome == "timeout":
            time.sleep(owner.hang_s)
            self._send(200, _completion(body, owner.usage, owner.responder))
        elif outcome == "malformed":
            self._send_raw(200, b'{"id": "x", "choices": [{"message": ')
        elif outcome == "empty":
            self._send(200, {"id": "x", "object": "chat.completion", "choices": []})
        elif outcome == "no_content":
            message = {"role": "assistant", "content": ""}
            self._send(200, {"id": "x", "choices": [{"index": 0, "message": message}]})
        elif outcome == "disconnect":
            self.close_connection = True
            self.connection.close()
        else:
            self._send(200, _completion(body, owner.usage, owner.responder))

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _completion(body: dict, usage: bool, responder: Callable[[str, list[dict]], str]) -> dict:
    model, messages = body["model"], body["messages"]
    text = responder(model, messages)
    reply = {
        "id": "chatcmpl-" + hashlib.sha256(text.encode()).hexdigest()[:12],
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        prompt, completion = usage_for(model, messages, lambda *_: text)
        reply["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    return reply


def main() -> None:
    parser = argparse.ArgumentParser(description="An OpenAI-compatible test server.")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    server = FakeServer(latency_s=options.latency, port=options.port).start()
    print(server.base_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
