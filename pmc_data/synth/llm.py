"""One interface to the LLMs that write rationales and conversations: cached, retried, counted.

Two backends (:mod:`pmc_data.synth.backends`): any OpenAI-compatible server (vLLM, TGI,
llama.cpp, OpenAI) through the ``openai`` client and ``base_url``, or local ``transformers``
generation. Every completion goes to a content-addressed cache (:mod:`pmc_data.synth.cache`)
the moment it arrives, so a rerun or a crash never pays for one twice. A dry run sends nothing
and estimates what a real run would cost:

>>> import tempfile
>>> folder = tempfile.TemporaryDirectory()
>>> args = LLMArgs(model="gpt-4o-mini", max_new_tokens=200, cache_dir=folder.name,
...                price_per_million_input=0.15, price_per_million_output=0.60)
>>> llm = LLM(args, dry_run=True)  # no API key needed, no request made
>>> chats = [[{"role": "user", "content": "What does a beta-blocker do?"}],
...          [{"role": "user", "content": "Define tachycardia."}]]
>>> [(c.text, c.error, c.prompt_tokens) for c in llm.complete(chats)]
[(None, 'dry_run', 9), (None, 'dry_run', 7)]
>>> print(llm.usage.summary())
dry run: 2 requests to make, 0 cache hits
estimate: about 16 prompt tokens, at most 400 completion tokens, at most $0.0002424
sample prompt 1:
user: What does a beta-blocker do?
sample prompt 2:
user: Define tachycardia.

A real run returns one :class:`Completion` per chat, in order; ``llm.take_usage()`` gives the
requests, retries, failures, tokens and cost since the last call, for the manifest.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from pmc_data.registry import StepArgs
from pmc_data.synth.backends import OpenAIBackend, Reply, TransformersBackend
from pmc_data.synth.cache import Cache, Entry, cache_key, cache_root

#: Up to this many sample prompts are kept for a dry run's report.
SAMPLES = 3


class LLMArgs(StepArgs):
    """Which model, how to reach it, how to sample, and what it costs. Recipes embed it as
    ``llm:`` in a step."""

    backend: Literal["openai", "transformers"] = "openai"
    #: The model id the server knows, or a local folder for ``transformers``.
    model: str
    #: Recorded in provenance; ``transformers`` also loads this revision.
    revision: str | None = None
    #: e.g. ``http://127.0.0.1:8000/v1``; None is the OpenAI API.
    base_url: str | None = None
    #: The environment variable holding the key; local servers need none.
    api_key_env: str = "OPENAI_API_KEY"
    #: Requests in flight at most.
    concurrency: int = Field(8, ge=1)
    #: Requests started per minute at most, evenly spaced; None is no limit.
    requests_per_minute: float | None = Field(None, gt=0)
    #: Retries of a request after a 429, 5xx, timeout, connection error or malformed reply.
    max_retries: int = Field(6, ge=0)
    #: Seconds before retry n (from 0) is ``retry_base_s * 2**n`` with jitter, at most
    #: ``retry_max_s`` (which also caps a server's Retry-After).
    retry_base_s: float = Field(0.5, ge=0)
    retry_max_s: float = Field(30.0, ge=0)
    #: Seconds one request may take.
    timeout_s: float = Field(60.0, gt=0)
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(512, ge=1)
    #: Sent to the server (OpenAI ``seed``); seeds ``transformers`` sampling per batch.
    seed: int = 0
    #: None is ``$PMC_DATA_CACHE`` or ``~/.cache/pmc-data``; completions go to ``<dir>/llm/``.
    cache_dir: str | None = None
    #: US dollars per million tokens, for the cost in the manifest and the dry run.
    price_per_million_input: float = Field(0.0, ge=0)
    price_per_million_output: float = Field(0.0, ge=0)
    #: ``transformers``: prompts per ``generate`` call.
    batch_size: int = Field(8, ge=1)
    #: ``transformers``: "cuda", "cpu", ...; None is CUDA when there is one.
    device: str | None = None


@dataclass
class Completion:
    """One chat's answer. ``text`` is None when it failed, and ``error`` says why
    (``http_429_exhausted``, ``timeout``, ``malformed_response``, ``http_500``, ``dry_run``...)."""

    text: str | None
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    #: The server's reason to stop: "stop", "length" (cut at max_new_tokens), or None.
    finish_reason: str | None = None


@dataclass
class Usage:
    """What the LLM was asked and what it cost; ``u1 + u2`` adds, :meth:`to_dict` is for the
    manifest.

    ``requests`` counts every request sent, retries included; ``completed`` the chats answered
    by a request, ``cache_hits`` those answered without one, ``failures`` the rest by reason.
    Tokens and cost are those of the completed requests. A dry run fills the ``estimated_``
    fields instead: prompt tokens of the chats it would send, ``max_new_tokens`` completion
    tokens for each (an upper bound), and the cost of both.

    >>> a = Usage(requests=3, retries=1, completed=2, prompt_tokens=100, cost_usd=0.25)
    >>> (a + Usage(requests=1, completed=1, failures={"timeout": 1})).to_dict()["requests"]
    4
    """

    requests: int = 0
    completed: int = 0
    cache_hits: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    estimated_requests: int = 0
    estimated_prompt_tokens: int = 0
    estimated_completion_tokens: int = 0
    estimated_cost_usd: float = 0.0
    sample_prompts: list[str] = field(default_factory=list)

    def __add__(self, other: Usage) -> Usage:
        summed = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("failures", "sample_prompts")
        }
        failures = dict(Counter(self.failures) + Counter(other.failures))
        samples = (self.sample_prompts + other.sample_prompts)[:SAMPLES]
        return Usage(**summed, failures=failures, sample_prompts=samples)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """A few lines for a person: what a dry run would send and cost, or what a run did."""
        if self.estimated_requests or self.sample_prompts:
            lines = [
                f"dry run: {self.estimated_requests:,} requests to make, "
                f"{self.cache_hits:,} cache hits",
                f"estimate: about {self.estimated_prompt_tokens:,} prompt tokens, at most "
                f"{self.estimated_completion_tokens:,} completion tokens, at most "
                f"${self.estimated_cost_usd:,.6g}",
            ]
            for n, prompt in enumerate(self.sample_prompts, 1):
                lines += [f"sample prompt {n}:", prompt]
            return "\n".join(lines)
        failed = ", ".join(f"{reason} {n:,}" for reason, n in sorted(self.failures.items()))
        return (
            f"{self.completed:,} completed, {self.cache_hits:,} cache hits, "
            f"{sum(self.failures.values()):,} failed{f' ({failed})' if failed else ''}; "
            f"{self.requests:,} requests ({self.retries:,} retries), "
            f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens, "
            f"${self.cost_usd:,.6g}"
        )


class LLM:
    """Completions for lists of chats, through the cache, with usage accounting.

    One :meth:`complete` call at a time; each worker process makes its own ``LLM``, and they
    share the cache. :meth:`close` (or ``with LLM(...) as llm``) lets go of the connections
    at once; otherwise they go when the ``LLM`` is garbage-collected.
    """

    def __init__(self, args: LLMArgs, dry_run: bool = False) -> None:
        self.args = args
        self.dry_run = dry_run
        self.cache = Cache(cache_root(args.cache_dir))
        backends = {"openai": OpenAIBackend, "transformers": TransformersBackend}
        self.backend = backends[args.backend](args, dry_run)
        self._total = Usage()
        self._since_taken = Usage()

    def key(self, messages: list[dict]) -> str:
        """The cache key of one chat: everything that decides its completion, and nothing
        that does not (not the server's address, the concurrency or the prices)."""
        args = self.args
        return cache_key(
            {
                "backend": args.backend,
                "model": args.model,
                "revision": args.revision,
                "messages": messages,
                "temperature": args.temperature,
                "top_p": args.top_p,
                "max_new_tokens": args.max_new_tokens,
                "seed": args.seed,
            }
        )

    def complete(self, conversations: list[list[dict]]) -> list[Completion]:
        """One completion per chat (a list of ``{"role", "content"}`` messages), in order.

        Cached chats are answered without a request, and a chat repeated in the list is sent
        once. The rest go to the backend; each answer is cached as soon as it arrives, so a
        crash midway loses nothing paid for. A chat that still fails after the retries gets
        ``text=None`` and the reason in ``error``; the others are unaffected. In a dry run
        nothing is sent: uncached chats get ``error="dry_run"`` and their estimated prompt
        tokens, and count towards the usage's estimate.
        """
        keys = [self.key(messages) for messages in conversations]
        found = self.cache.get_many(set(keys))
        results: list[Completion | None] = [None] * len(keys)
        first: dict[str, int] = {}  # key -> the chat that is sent for it
        repeats: list[int] = []
        usage = Usage()
        for i, key in enumerate(keys):
            entry = found.get(key)
            if entry is not None:
                results[i] = Completion(
                    entry.text, None, entry.prompt_tokens, entry.completion_tokens, True,
                    entry.finish_reason,
                )  # fmt: skip
                usage.cache_hits += 1
            elif key in first:
                repeats.append(i)
            else:
                first[key] = i
        send = list(first.values())

        def done(j: int, reply: Reply) -> None:
            i = send[j]
            usage.requests += reply.attempts
            usage.retries += reply.attempts - 1
            if reply.text is None:
                usage.failures[reply.error] = usage.failures.get(reply.error, 0) + 1
                results[i] = Completion(None, reply.error, 0, 0, False)
                return
            entry = Entry(reply.text, reply.prompt_tokens, reply.completion_tokens,
                          reply.finish_reason)  # fmt: skip
            self.cache.put(keys[i], entry)
            usage.completed += 1
            usage.prompt_tokens += reply.prompt_tokens
            usage.completion_tokens += reply.completion_tokens
            results[i] = Completion(
                reply.text, None, reply.prompt_tokens, reply.completion_tokens, False,
                reply.finish_reason,
            )  # fmt: skip

        try:
            if self.dry_run:
                self._estimate([conversations[i] for i in send], send, results, usage)
            else:
                self.backend.run([conversations[i] for i in send], done)
            for i in repeats:
                answer = results[first[keys[i]]]
                if answer.text is None and not self.dry_run:
                    usage.failures[answer.error] = usage.failures.get(answer.error, 0) + 1
                else:
                    usage.cache_hits += 1
                results[i] = dataclasses.replace(answer, cached=answer.text is not None)
        finally:
            usage.cost_usd = self._cost(usage.prompt_tokens, usage.completion_tokens)
            self._total = self._total + usage
            self._since_taken = self._since_taken + usage
        return results

    @property
    def usage(self) -> Usage:
        """Everything since this LLM was made."""
        return self._total

    def take_usage(self) -> Usage:
        """The usage since the last call (the runner records it per work unit)."""
        taken, self._since_taken = self._since_taken, Usage()
        return taken

    def describe(self) -> dict:
        """What provenance records of the generator.

        >>> LLM(LLMArgs(model="m", temperature=0.0), dry_run=True).describe()["temperature"]
        0.0
        """
        args = self.args
        return {
            "backend": args.backend,
            "model": args.model,
            "revision": args.revision,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_new_tokens": args.max_new_tokens,
            "seed": args.seed,
        }

    def close(self) -> None:
        """Let go of connections, the event-loop thread, a loaded model and the cache file."""
        self.backend.close()
        self.cache.close()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _estimate(
        self, chats: list[list[dict]], send: list[int], results: list, usage: Usage
    ) -> None:
        for i, messages in zip(send, chats, strict=True):
            tokens = self.backend.estimate_prompt_tokens(messages)
            results[i] = Completion(None, "dry_run", tokens, 0, False)
            usage.estimated_prompt_tokens += tokens
        usage.estimated_requests = len(chats)
        usage.estimated_completion_tokens = len(chats) * self.args.max_new_tokens
        usage.estimated_cost_usd = self._cost(
            usage.estimated_prompt_tokens, usage.estimated_completion_tokens
        )
        usage.sample_prompts = [self.backend.render(m) for m in chats[:SAMPLES]]

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.args.price_per_million_input
            + completion_tokens * self.args.price_per_million_output
        ) / 1e6


class LLMStep:
    """Mixin of the document steps that call an LLM (``self.args.llm``): one client per
    worker process, made on first use, dry-run aware, and its usage reported per unit."""

    _llm: LLM | None = None

    @property
    def llm(self) -> LLM:
        if self._llm is None:  # in the worker, so each process has its own client
            self._llm = LLM(self.args.llm, dry_run=os.environ.get("PMC_DATA_DRY_RUN") == "1")
        return self._llm

    def take_report(self) -> dict:
        return self.llm.take_usage().to_dict() if self._llm is not None else {}
