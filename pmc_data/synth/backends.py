"""The two ways to get a completion: an OpenAI-compatible server, or local ``transformers``.

A backend knows nothing of the cache or of usage accounting (:class:`pmc_data.synth.llm.LLM`
does both). It takes a list of chats and calls ``done(i, reply)`` once for each, as soon as
that reply is final, so the caller can store it before the next one arrives. It also renders a
chat as the text a dry run shows, and estimates its prompt tokens.

The OpenAI backend sends requests concurrently from an asyncio event loop, spaced by a rate
limiter, and retries what a retry can fix. The delay before retry ``n`` (from 0) is a
server's ``Retry-After`` when it sends one, else exponential with jitter:

>>> import random
>>> rng = random.Random(0)
>>> [round(backoff(n, base=0.5, cap=30.0, rng=rng), 2) for n in range(7)]
[0.46, 0.88, 1.42, 2.52, 6.05, 11.24, 26.76]
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from pmc_data.errors import BuildError

if TYPE_CHECKING:
    from pmc_data.synth.llm import LLMArgs

#: Concurrent requests that share one HTTP connection pool.
POOL_SIZE = 8

#: HTTP statuses worth retrying: rate limited, request timeout, conflict, server errors.
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


@dataclass
class Reply:
    """One chat's final outcome: a text, or an error reason; ``attempts`` requests were made."""

    text: str | None
    error: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    attempts: int = 1


Done = Callable[[int, Reply], None]


def render(messages: list[dict]) -> str:
    """A chat as ``role: content`` lines: what a dry run shows, and the plain prompt format.

    >>> print(render([{"role": "system", "content": "Be brief."},
    ...               {"role": "user", "content": "Hi"}]))
    system: Be brief.
    user: Hi
    """
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)


def backoff(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry number ``retry`` (0 = the first): ``base * 2**retry``, at most
    ``cap``, times a random factor in [0.5, 1) so that failed requests do not return together."""
    return min(cap, base * 2**retry) * rng.uniform(0.5, 1.0)


def retry_after(headers: Any) -> float | None:
    """The seconds a server asks us to wait (``retry-after-ms`` or ``retry-after``), if any.

    >>> retry_after({"retry-after": "2"}), retry_after({"retry-after-ms": "150"})
    (2.0, 0.15)
    >>> retry_after({}), retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    (None, None)
    """
    for name, unit in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                seconds = float(value) / unit
            except ValueError:
                continue  # an HTTP date: rare enough to fall back to our own backoff
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    return None


class RateLimiter:
    """Starts at most ``per_minute`` requests a minute, evenly spaced (a token bucket of one
    token), and holds every request back while a server has asked us to wait.

    >>> now = [0.0]
    >>> limiter = RateLimiter(120, clock=lambda: now[0])
    >>> [limiter.reserve() for _ in range(3)]  # seconds each caller waits
    [0.0, 0.5, 1.0]
    >>> limiter.pause(5.0); limiter.reserve()
    5.0
    """

    def __init__(
        self, per_minute: float | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.clock = clock
        self.next_start = -math.inf

    def reserve(self) -> float:
        """Claim the next start slot; returns how long to wait for it."""
        now = self.clock()
        start = max(now, self.next_start)
        if self.interval:
            self.next_start = start + self.interval
        return start - now

    def pause(self, seconds: float) -> None:
        """No request starts in the next ``seconds``."""
        self.next_start = max(self.next_start, self.clock() + seconds)

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class _Malformed(Exception):
    """A 200 reply that holds no completion: not JSON, no choices, or no content."""


class OpenAIBackend:
    """Any OpenAI-compatible chat completions server, through the ``openai`` client."""

    def __init__(self, args: LLMArgs, dry_run: bool = False) -> None:
        self.args = args
        self.api_key = "" if dry_run else _api_key(args)
        self.rng = random.Random()  # jitter only: it decides no output
        if not dry_run:
            import openai  # here, not in the first run: it takes most of a second

            self.openai = openai
        # The event loop runs in a thread of its own for the backend's life, so that clients,
        # their connections (TLS handshakes with a remote API) and the rate limiter outlive one
        # run() call; the runner makes one call per work unit.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._clients: list[Any] = []
        self._limiter = RateLimiter(args.requests_per_minute)

    @staticmethod
    def render(messages: list[dict]) -> str:
        return render(messages)

    def estimate_prompt_tokens(self, messages: list[dict]) -> int:
        """About four characters a token (English prose, GPT-style tokenizers)."""
        return math.ceil(len(render(messages)) / 4)

    def run(self, chats: list[list[dict]], done: Done) -> None:
        """Complete ``chats``; ``done`` is called from the backend's event-loop thread."""
        if not chats:
            return
        future = asyncio.run_coroutine_threadsafe(self._run(chats, done), self._event_loop())
        try:
            future.result()
        except BaseException:
            future.cancel()  # Ctrl-C here: stop the requests in flight too
            raise

    def close(self) -> None:
        """Close the connections and stop the event loop; a later run starts them again."""
        if self._loop is not None and self._pid == os.getpid():
            self._stop()
            self._thread.join(timeout=30)
        self._loop = None

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._pid != os.getpid():
            if self._loop is not None:  # a fork's child: the parent's loop has no thread here
                self._stop.detach()
            loop, clients = asyncio.new_event_loop(), []
            self._loop, self._clients, self._pid = loop, clients, os.getpid()
            self._thread = threading.Thread(
                target=_serve, args=(loop,), name="pmc-data-llm", daemon=True
            )
            self._thread.start()
            # Also when the backend is dropped unclosed: no thread or connection outlives it.
            self._stop = weakref.finalize(self, _shut_down, loop, clients)
        return self._loop

    async def _run(self, chats: list[list[dict]], done: Done) -> None:
        workers = min(self.args.concurrency, len(chats))
        # One client per POOL_SIZE workers: an HTTP pool scans all its connections for every
        # request, which at 64 connections in one pool was the client's largest cost.
        while len(self._clients) * POOL_SIZE < workers:
            self._clients.append(
                self.openai.AsyncOpenAI(
                    api_key=self.api_key,
                    base_url=self.args.base_url,
                    timeout=self.args.timeout_s,
                    max_retries=0,  # ours retry, count and classify; the client's do it unseen
                )
            )
        pending = iter(range(len(chats)))  # shared by the workers: each takes the next chat

        async def worker(client: Any) -> None:
            for i in pending:
                done(i, await self._complete(client, chats[i]))

        try:
            async with asyncio.TaskGroup() as group:
                for n in range(workers):
                    group.create_task(worker(self._clients[n // POOL_SIZE]))
        except ExceptionGroup as group:  # the group wraps the first failure: raise it as is
            raise group.exceptions[0] from None

    async def _complete(self, client: Any, messages: list[dict]) -> Reply:
        openai, args = self.openai, self.args
        # The official API has deprecated max_tokens (its reasoning models refuse it);
        # vLLM, TGI and llama.cpp servers all accept it, not all max_completion_tokens.
        limit = "max_tokens" if args.base_url else "max_completion_tokens"
        params = {
            "model": args.model,
            "messages": messages,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "seed": args.seed,
            limit: args.max_new_tokens,
        }
        error = ""
        for attempt in range(args.max_retries + 1):
            wait = None
            await self._limiter.wait()
            try:
                # The client's generic post, not chat.completions.create: the same request,
                # without the SDK's per-request conversion of the typed parameters, which
                # costs a third of the client's CPU time at a few hundred requests a second.
                # cast_to=object: the JSON as it came (a str if it was not JSON).
                body = await client.post("/chat/completions", body=params, cast_to=object)
                reply = self._parse(body, messages)
                reply.attempts = attempt + 1
                return reply
            except openai.APIStatusError as exc:
                status = exc.status_code
                error = f"http_{status}"
                self._refuse(status, exc)
                if status not in RETRY_STATUSES:
                    return Reply(None, error, attempts=attempt + 1)
                wait = retry_after(exc.response.headers)
                if status == 429:  # the limit is the server's, not this request's: all wait
                    wait = min(self._backoff(attempt) if wait is None else wait, args.retry_max_s)
                    self._limiter.pause(wait)
            except openai.APITimeoutError:
                error = "timeout"
            except openai.APIConnectionError:
                error = "connection_error"
            except (_Malformed, ValueError):  # ValueError: JSON that does not parse
                error = "malformed_response"
            if attempt < args.max_retries:
                if wait is None:
                    wait = self._backoff(attempt)
                await asyncio.sleep(min(wait, args.retry_max_s))
        if error == "connection_error":
            # Every retry could not even connect: the server is down, and every other chat
            # would fail the same way after as long a wait. Stop; a rerun resumes from the cache.
            raise BuildError(
                f"cannot reach {args.base_url or 'the OpenAI API'} after {attempt + 1} attempts:"
                " is the server running, and is llm.base_url right?"
            )
        # A 429 says nothing about this chat, only that the retries ran out before the server
        # let us through.
        if error == "http_429":
            error = "http_429_exhausted"
        return Reply(None, error, attempts=args.max_retries + 1)

    def _backoff(self, retry: int) -> float:
        return backoff(retry, self.args.retry_base_s, self.args.retry_max_s, self.rng)

    def _refuse(self, status: int, exc: Exception) -> None:
        """Statuses that no chat of this run can get past: stop, with what to change."""
        server = self.args.base_url or "the OpenAI API"
        if status in (401, 403):
            raise BuildError(
                f"{server} refused the API key from ${self.args.api_key_env} (HTTP {status}): "
                f"set {self.args.api_key_env} to a valid key, or llm.api_key_env to the "
                "variable that holds one"
            ) from exc
        if status == 404:
            raise BuildError(
                f"{server} has no model {self.args.model!r} (HTTP 404): check llm.model and "
                "llm.base_url (GET <base_url>/models lists the models a server has)"
            ) from exc

    def _parse(self, data: Any, messages: list[dict]) -> Reply:
        try:
            if isinstance(data, str):  # served as text/plain, or as no content type at all
                data = orjson.loads(data)
            choice = data["choices"][0]
            text = choice["message"]["content"]
            usage = data.get("usage") or {}
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _Malformed from exc
        if not isinstance(text, str) or not text.strip():
            raise _Malformed
        # Some servers leave usage out; then both counts are estimates.
        prompt = usage.get("prompt_tokens")
        completion = usage.get("completion_tokens")
        return Reply(
            text,
            None,
            prompt if isinstance(prompt, int) else self.estimate_prompt_tokens(messages),
            completion if isinstance(completion, int) else math.ceil(len(text) / 4),
            choice.get("finish_reason"),
        )


class TransformersBackend:
    """Local generation with ``transformers``: batched, left-padded, exact token counts.

    The tokenizer loads at once (a dry run needs it for exact prompt counts); the model on the
    first :meth:`run`.
    """

    def __init__(self, args: LLMArgs, dry_run: bool = False) -> None:
        from transformers import AutoTokenizer

        self.args = args
        tokenizer = AutoTokenizer.from_pretrained(args.model, revision=args.revision)
        tokenizer.padding_side = "left"  # generation continues from the right end
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.templated = bool(getattr(tokenizer, "chat_template", None))
        self.model: Any = None

    def render(self, messages: list[dict]) -> str:
        """The prompt text: the tokenizer's chat template, else ``role: content`` lines."""
        if self.templated:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        return render(messages) + "\nassistant:"

    def encode(self, texts: list[str], **kwargs: Any) -> Any:
        # A chat template writes its own BOS; a plain prompt gets the tokenizer's.
        return self.tokenizer(texts, add_special_tokens=not self.templated, **kwargs)

    def estimate_prompt_tokens(self, messages: list[dict]) -> int:
        """Exact: the tokenizer's count of the rendered prompt."""
        return len(self.encode([self.render(messages)])["input_ids"][0])

    def run(self, chats: list[list[dict]], done: Done) -> None:
        import torch

        if not chats:
            return
        model = self._load()
        args, tokenizer = self.args, self.tokenizer
        texts = [self.render(messages) for messages in chats]
        lengths = [len(ids) for ids in self.encode(texts)["input_ids"]]
        # Similar lengths together: less padding, fewer wasted positions.
        order = sorted(range(len(chats)), key=lambda i: lengths[i])
        stops = self._stop_ids(model)
        options: dict[str, Any] = {
            "max_new_tokens": args.max_new_tokens,
            "do_sample": args.temperature > 0,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if args.temperature > 0:
            # top_k=0: no top-k cut, as in the OpenAI API, whatever the model's config says.
            options |= {"temperature": args.temperature, "top_p": args.top_p, "top_k": 0}
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            inputs = self.encode([texts[i] for i in batch], padding=True, return_tensors="pt")
            inputs = inputs.to(model.device)
            torch.manual_seed(args.seed)  # the same batch samples the same text on a rerun
            with torch.inference_mode():
                output = model.generate(**inputs, **options)
            new = output[:, inputs["input_ids"].shape[1] :].tolist()
            prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
            for row, i in enumerate(batch):
                ids = new[row]
                end = next((n for n, token in enumerate(ids) if token in stops), None)
                generated = ids if end is None else ids[: end + 1]
                text = tokenizer.decode(ids[:end], skip_special_tokens=True)
                reason = "stop" if end is not None else "length"
                done(i, Reply(text, None, prompt_tokens[row], len(generated), reason))

    def close(self) -> None:
        self.model = None  # the next run loads it again

    def _load(self) -> Any:
        if self.model is None:
            import torch
            from transformers import AutoModelForCausalLM

            device = self.args.device or ("cuda" if torch.cuda.is_available() else "cpu")
            model = AutoModelForCausalLM.from_pretrained(
                self.args.model, revision=self.args.revision, dtype="auto"
            )
            self.model = model.to(device).eval()
        return self.model

    def _stop_ids(self, model: Any) -> set[int]:
        configured = model.generation_config.eos_token_id
        if configured is None:
            configured = []
        elif isinstance(configured, int):
            configured = [configured]
        return {*configured, self.tokenizer.eos_token_id} - {None}


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


def _shut_down(loop: asyncio.AbstractEventLoop, clients: list) -> None:
    """Close ``clients`` and stop ``loop``, from any thread, without waiting."""

    async def shut_down() -> None:
        for client in clients:
            await client.close()
        loop.stop()

    if not loop.is_closed():
        asyncio.run_coroutine_threadsafe(shut_down(), loop)


def _api_key(args: LLMArgs) -> str:
    key = os.environ.get(args.api_key_env)
    if key:
        return key
    if args.base_url:
        return "EMPTY"  # local servers (vLLM, llama.cpp) take any key unless started with one
    raise BuildError(
        f"${args.api_key_env} is not set: export your OpenAI API key as {args.api_key_env}, "
        "or set llm.api_key_env to the variable that holds it, or llm.base_url for a local "
        "server"
    )
