"""The LLM layer: an OpenAI-compatible server with injected faults, the cache across a crash,
dry runs and cost accounting, and local transformers generation with a tiny random model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from llm_server import FakeServer, reply_for, usage_for

from pmc_data.errors import BuildError
from pmc_data.synth.backends import RateLimiter, render
from pmc_data.synth.cache import Cache, Entry
from pmc_data.synth.llm import LLM, Completion, LLMArgs, Usage

ROOT = Path(__file__).resolve().parents[1]
MODEL = "med-llm-7b"
QUESTIONS = [
    "A 54-year-old man has crushing chest pain radiating to the left arm. Next step?",
    "Which antibiotic is first line for community-acquired pneumonia in adults?",
    "What is the mechanism of action of metformin?",
    "Name two contraindications to thrombolysis in acute ischaemic stroke.",
    "Why do beta-blockers help in aortic dissection?",
    "What does a raised serum lipase suggest?",
]


def chat(question: str, system: str = "You are a careful medical educator.") -> list[dict]:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


@pytest.fixture
def serve():
    """Start FakeServers for a test; stops them after it."""
    started: list[FakeServer] = []

    def start(**options) -> FakeServer:
        started.append(FakeServer(**options).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


def llm_args(server: FakeServer | None, cache: Path, **overrides) -> LLMArgs:
    # Millisecond backoff keeps the suite fast; the schedule itself is tested in backends.
    options = {
        "model": MODEL,
        "base_url": server.base_url if server else None,
        "cache_dir": str(cache),
        "temperature": 0.0,
        "max_new_tokens": 64,
        "retry_base_s": 0.001,
        "retry_max_s": 0.01,
        "timeout_s": 5.0,
    }
    return LLMArgs(**{**options, **overrides})


def expected(messages: list[dict], cached: bool = False) -> Completion:
    prompt, completion = usage_for(MODEL, messages)
    return Completion(reply_for(MODEL, messages), None, prompt, completion, cached, "stop")


# ---- the OpenAI backend against a server --------------------------------------------------


def test_completions_come_back_in_order_with_the_servers_token_counts(serve, tmp_path):
    server = serve(latency_s=0.01)
    chats = [chat(q) for q in QUESTIONS]
    args = llm_args(server, tmp_path, price_per_million_input=3.0, price_per_million_output=15.0)
    llm = LLM(args)

    assert llm.complete(chats) == [expected(c) for c in chats]
    prompt_tokens = sum(usage_for(MODEL, c)[0] for c in chats)
    completion_tokens = sum(usage_for(MODEL, c)[1] for c in chats)
    usage = llm.usage
    assert (usage.requests, usage.completed, usage.retries, usage.cache_hits) == (6, 6, 0, 0)
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, completion_tokens)
    assert usage.cost_usd == pytest.approx((prompt_tokens * 3.0 + completion_tokens * 15.0) / 1e6)
    assert usage.failures == {}
    # What was sent: the sampling parameters, the chat as given, max_tokens for a local server.
    body = next(r.body for r in server.log if r.prompt == QUESTIONS[0])
    assert body["model"] == MODEL and body["messages"] == chats[0]
    assert (body["temperature"], body["top_p"], body["seed"], body["max_tokens"]) == (0, 1, 0, 64)


def test_every_fault_kind_is_retried_until_the_reply_comes(serve, tmp_path):
    faults = {
        QUESTIONS[0]: ["429", "429"],
        QUESTIONS[1]: ["500", "503"],
        QUESTIONS[2]: ["timeout"],
        QUESTIONS[3]: ["malformed", "empty", "no_content"],
        QUESTIONS[4]: ["disconnect", "500"],
    }
    server = serve(faults={q: list(f) for q, f in faults.items()}, hang_s=1.5)
    chats = [chat(q) for q in QUESTIONS]
    llm = LLM(llm_args(server, tmp_path, timeout_s=0.5, max_retries=3, concurrency=6))

    assert llm.complete(chats) == [expected(c) for c in chats]
    for question in QUESTIONS:
        outcomes = [r.outcome for r in server.log if r.prompt == question]
        assert outcomes == [*faults.get(question, []), "ok"], question
    usage = llm.usage
    retries = sum(len(f) for f in faults.values())
    assert (usage.requests, usage.retries, usage.completed) == (6 + retries, retries, 6)
    assert usage.failures == {}


def test_a_chat_that_exhausts_its_retries_fails_alone_and_is_retried_on_a_rerun(serve, tmp_path):
    faults = {
        QUESTIONS[0]: ["429"] * 3,
        QUESTIONS[1]: ["500"] * 3,
        QUESTIONS[2]: ["timeout"] * 3,
        QUESTIONS[3]: ["malformed", "empty", "malformed"],
        QUESTIONS[4]: ["400"],  # a bad request: retrying cannot help
    }
    server = serve(faults=faults, hang_s=1.5)
    chats = [chat(q) for q in QUESTIONS]
    llm = LLM(llm_args(server, tmp_path, timeout_s=0.5, max_retries=2, concurrency=6))

    results = llm.complete(chats)
    assert [r.error for r in results] == [
        "http_429_exhausted", "http_500", "timeout", "malformed_response", "http_400", None,
    ]  # fmt: skip
    assert all(r.text is None and r.prompt_tokens == 0 for r in results[:5])
    assert results[5] == expected(chats[5])
    assert [r.outcome for r in server.log if r.prompt == QUESTIONS[4]] == ["400"]
    usage = llm.take_usage()
    assert usage.failures == {
        "http_429_exhausted": 1, "http_500": 1, "timeout": 1, "malformed_response": 1,
        "http_400": 1,
    }  # fmt: skip
    assert (usage.requests, usage.retries, usage.completed) == (4 * 3 + 1 + 1, 4 * 2, 1)
    assert usage.prompt_tokens == usage_for(MODEL, chats[5])[0]

    # Failures are not cached: the rerun asks again for those five only, and the server,
    # its faults spent, answers them.
    before = len(server.log)
    assert llm.complete(chats) == [expected(c) for c in chats[:5]] + [expected(chats[5], True)]
    assert sorted(r.prompt for r in server.log[before:]) == sorted(QUESTIONS[:5])


def test_a_refused_key_stops_the_run_with_what_to_do(serve, tmp_path, monkeypatch):
    server = serve(faults={QUESTIONS[0]: ["401"]})
    monkeypatch.setenv("PMC_TEST_KEY", "sk-wrong")
    llm = LLM(llm_args(server, tmp_path, api_key_env="PMC_TEST_KEY"))
    with pytest.raises(BuildError, match=r"refused the API key from \$PMC_TEST_KEY \(HTTP 401\)"):
        llm.complete([chat(QUESTIONS[0])])


def test_an_unreachable_server_stops_the_run_with_what_to_do(serve, tmp_path):
    server = serve()
    server.stop()  # its port is now closed
    llm = LLM(llm_args(server, tmp_path, max_retries=2))
    with pytest.raises(
        BuildError, match=r"cannot reach .* after 3 attempts: is the server running"
    ):
        llm.complete([chat(q) for q in QUESTIONS])


def test_a_missing_api_key_for_the_openai_api_is_an_error_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BuildError, match=r"\$OPENAI_API_KEY is not set: export your OpenAI"):
        LLM(llm_args(None, tmp_path))


def test_no_more_than_concurrency_requests_are_in_flight(serve, tmp_path):
    server = serve(latency_s=0.1)
    llm = LLM(llm_args(server, tmp_path, concurrency=3))
    chats = [chat(f"Question {i}: what is the normal range of serum sodium?") for i in range(12)]
    assert llm.complete(chats) == [expected(c) for c in chats]
    assert server.max_in_flight == 3


def test_the_rate_limiter_spaces_requests_and_holds_them_after_a_429():
    now = [10.0]
    limiter = RateLimiter(30, clock=lambda: now[0])  # one start every 2 s
    assert [limiter.reserve() for _ in range(3)] == [0.0, 2.0, 4.0]
    now[0] = 20.0  # idle for a while: no burst is saved up
    assert [limiter.reserve() for _ in range(2)] == [0.0, 2.0]
    limiter.pause(7.0)
    assert limiter.reserve() == 7.0
    unlimited = RateLimiter(None, clock=lambda: now[0])
    assert [unlimited.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    unlimited.pause(1.5)
    assert [unlimited.reserve() for _ in range(2)] == [1.5, 1.5]


# ---- the cache -------------------------------------------------------------------------------


def test_a_cached_chat_is_answered_identically_without_a_request(serve, tmp_path):
    server = serve()
    chats = [chat(q) for q in QUESTIONS[:4]]
    first = LLM(llm_args(server, tmp_path)).complete(chats)
    requests = len(server.log)

    # A new LLM (a rerun), and another server with the same model: the cache answers.
    other = serve()
    llm = LLM(llm_args(other, tmp_path, concurrency=2, price_per_million_input=5.0))
    again = llm.complete(chats)
    assert again == [Completion(**{**vars(c), "cached": True}) for c in first]
    assert len(server.log) == requests and other.log == []
    assert llm.usage == Usage(cache_hits=4)

    # Anything that changes the completion is another key.
    hotter = LLM(llm_args(other, tmp_path, temperature=0.7)).complete(chats[:1])
    seeded = LLM(llm_args(other, tmp_path, seed=1)).complete(chats[:1])
    assert not hotter[0].cached and not seeded[0].cached and len(other.log) == 2


def test_a_chat_repeated_in_one_call_is_sent_once(serve, tmp_path):
    server = serve()
    chats = [chat(QUESTIONS[0]), chat(QUESTIONS[1]), chat(QUESTIONS[0]), chat(QUESTIONS[0])]
    llm = LLM(llm_args(server, tmp_path))
    results = llm.complete(chats)
    assert [r.text for r in results] == [reply_for(MODEL, c) for c in chats]
    assert [r.cached for r in results] == [False, False, True, True]
    assert sorted(r.prompt for r in server.log) == sorted(QUESTIONS[:2])
    assert (llm.usage.requests, llm.usage.completed, llm.usage.cache_hits) == (2, 2, 2)
    assert llm.complete([]) == [] and llm.usage.requests == 2


CRASHING_RUN = """
import json, os, sys
from pmc_data.synth.cache import Cache
from pmc_data.synth.llm import LLM, LLMArgs

args, chats, crash_after = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
put, stored = Cache.put, []

def put_then_die(self, key, entry):
    put(self, key, entry)
    stored.append(key)
    if len(stored) == crash_after:
        os._exit(3)  # no clean-up, no flush, in-flight requests abandoned: a crash

Cache.put = put_then_die
LLM(LLMArgs.model_validate_json(args)).complete(chats)
"""


def test_a_crash_midway_then_a_rerun_never_pays_for_a_completion_twice(serve, tmp_path):
    server = serve(latency_s=0.02)
    chats = [
        chat(f"Case {i}: a child with fever and a rash on the palms. Diagnosis?") for i in range(40)
    ]
    args = llm_args(server, tmp_path, concurrency=4)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, args.model_dump_json(), json.dumps(chats), "15"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert crashed.returncode == 3, crashed.stderr

    llm = LLM(args)
    keys = [llm.key(c) for c in chats]
    saved = Cache(tmp_path).get_many(keys)
    assert len(saved) == 15  # every completion stored before the crash, whole
    for messages, key in zip(chats, keys, strict=True):
        if key in saved:
            prompt, completion = usage_for(MODEL, messages)
            assert saved[key] == Entry(reply_for(MODEL, messages), prompt, completion, "stop")
    before = len(server.log)

    results = llm.complete(chats)
    assert [r.text for r in results] == [reply_for(MODEL, c) for c in chats]
    assert [r.cached for r in results] == [k in saved for k in keys]
    prompts = [c[-1]["content"] for c in chats]
    cached_prompts = {p for p, k in zip(prompts, keys, strict=True) if k in saved}
    rerun = [r.prompt for r in server.log[before:]]
    # The rerun asks once for each chat the crash left unanswered, and never for a stored one.
    assert sorted(rerun) == sorted(set(prompts) - cached_prompts)
    # Only requests in flight at the moment of the crash (at most concurrency - 1 besides the
    # one whose answer was being stored) were answered to a dead process and asked again.
    asked = [r.prompt for r in server.log]
    twice = {p for p in prompts if asked.count(p) > 1}
    assert not twice & cached_prompts and len(twice) <= 3
    assert all(asked.count(p) <= 2 for p in prompts)

    # A third run pays nothing.
    assert [r.cached for r in LLM(args).complete(chats)] == [True] * 40
    assert len(server.log) == before + len(rerun)


WRITER = """
import sys
from pmc_data.synth.cache import Cache, Entry

cache, me = Cache(sys.argv[1]), sys.argv[2]
for i in range(400):
    cache.put(f"{me}-{i}", Entry(f"text {me} {i}", i, 2 * i, "stop"))
"""


def test_worker_processes_write_one_cache_at_once(tmp_path):
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name], cwd=ROOT)
        for name in "abc"
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
    cache = Cache(tmp_path)
    assert len(cache) == 1200
    found = cache.get_many([f"{name}-{i}" for name in "abc" for i in range(400)] + ["x-1"])
    assert len(found) == 1200 and found["b-7"] == Entry("text b 7", 7, 14, "stop")
    # The first value of a key stays: two workers that raced on one chat agree on its answer.
    cache.put("a-1", Entry("a later answer", 1, 1, "stop"))
    assert cache.get_many(["a-1"])["a-1"].text == "text a 1"


# ---- dry run and usage -----------------------------------------------------------------------


def test_a_dry_run_sends_nothing_and_estimates_tokens_and_cost(serve, tmp_path, monkeypatch):
    server = serve()
    LLM(llm_args(server, tmp_path)).complete([chat(QUESTIONS[0])])
    # The OpenAI API itself, with no key: a dry run needs neither; the cache still answers.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    prices = {"price_per_million_input": 2.5, "price_per_million_output": 10.0}
    llm = LLM(llm_args(None, tmp_path, **prices), dry_run=True)
    chats = [chat(q) for q in QUESTIONS]

    results = llm.complete(chats)
    assert len(server.log) == 1
    # About four characters a token of the "role: content" lines.
    estimates = [-(-len(render(c)) // 4) for c in chats[1:]]
    assert results == [expected(chats[0], cached=True)] + [
        Completion(None, "dry_run", n, 0, False) for n in estimates
    ]
    usage = llm.usage
    assert usage.requests == 0 and usage.cache_hits == 1 and usage.failures == {}
    assert usage.estimated_requests == 5
    assert usage.estimated_prompt_tokens == sum(estimates)
    assert usage.estimated_completion_tokens == 5 * 64
    assert usage.estimated_cost_usd == pytest.approx((sum(estimates) * 2.5 + 320 * 10.0) / 1e6)
    assert usage.sample_prompts == [render(c) for c in chats[1:4]]
    assert usage.summary().splitlines()[:4] == [
        "dry run: 5 requests to make, 1 cache hits",
        f"estimate: about {sum(estimates)} prompt tokens, at most 320 completion tokens, at most "
        f"${usage.estimated_cost_usd:.6g}",
        "sample prompt 1:",
        f"system: You are a careful medical educator.\nuser: {QUESTIONS[1]}".splitlines()[0],
    ]


def test_usage_is_taken_per_unit_and_adds_up(serve, tmp_path):
    server = serve()
    prices = {"price_per_million_input": 1.25, "price_per_million_output": 10.0}
    llm = LLM(llm_args(server, tmp_path, **prices))
    tokens = [usage_for(MODEL, chat(q)) for q in QUESTIONS]

    def cost(prompt: int, completion: int) -> float:
        return (prompt * 1.25 + completion * 10.0) / 1e6

    llm.complete([chat(q) for q in QUESTIONS[:2]])
    first = llm.take_usage()
    llm.complete([chat(q) for q in QUESTIONS[1:4]])
    second = llm.take_usage()
    assert llm.take_usage() == Usage()

    p01, c01 = tokens[0][0] + tokens[1][0], tokens[0][1] + tokens[1][1]
    p23, c23 = tokens[2][0] + tokens[3][0], tokens[2][1] + tokens[3][1]
    assert first == Usage(2, 2, 0, {}, 0, p01, c01, cost(p01, c01))
    assert second == Usage(2, 2, 1, {}, 0, p23, c23, cost(p23, c23))
    total = llm.usage
    assert total == first + second
    assert (total.prompt_tokens, total.cost_usd) == (p01 + p23, cost(p01, c01) + cost(p23, c23))
    assert json.loads(json.dumps(total.to_dict())) == total.to_dict()
    assert total.to_dict()["requests"] == 4 and total.to_dict()["cache_hits"] == 1

    summed = Usage(failures={"timeout": 1}, sample_prompts=["a", "b"]) + Usage(
        failures={"timeout": 2, "http_500": 1}, sample_prompts=["c", "d"]
    )
    assert summed.failures == {"timeout": 3, "http_500": 1}
    assert summed.sample_prompts == ["a", "b", "c"]


def test_describe_records_what_decides_the_output(tmp_path):
    args = llm_args(None, tmp_path, revision="abc123", top_p=0.9, seed=7)
    assert LLM(args, dry_run=True).describe() == {
        "backend": "openai", "model": MODEL, "revision": "abc123", "temperature": 0.0,
        "top_p": 0.9, "max_new_tokens": 64, "seed": 7,
    }  # fmt: skip


def test_llm_args_refuse_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match=r"Extra inputs are not permitted"):
        LLMArgs(model="m", temprature=0.2)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        LLMArgs(model="m", concurrency=0)


# ---- the transformers backend with a tiny random model -------------------------------------

CHAT_TEMPLATE = (
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def build_tiny_model(folder: Path, chat_template: str | None = None) -> Path:
    """A 2-layer Llama with random weights and a byte-level BPE trained on a few sentences."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([*QUESTIONS, "system user assistant"] * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>",
    )  # fmt: skip
    if chat_template:
        tokenizer.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        # Larger than the default 0.02, so that the next-token logits are far apart and the
        # greedy choice does not hinge on rounding (padded or not, batched or not).
        initializer_range=0.5,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


def local_args(model: Path, cache: Path, **overrides) -> LLMArgs:
    options = {
        "backend": "transformers",
        "model": str(model),
        "cache_dir": str(cache),
        "temperature": 0.0,
        "max_new_tokens": 12,
        "device": "cpu",
    }
    return LLMArgs(**{**options, **overrides})


def reference_generate(model_folder: Path, prompt: str, max_new_tokens: int) -> tuple[str, int]:
    """Plain ``model.generate`` on one prompt, no padding: the text and the tokens generated."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    model = AutoModelForCausalLM.from_pretrained(model_folder)
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(
        **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0
    )
    new = output[0, inputs["input_ids"].shape[1] :].tolist()
    if tokenizer.eos_token_id in new:
        new = new[: new.index(tokenizer.eos_token_id) + 1]
    return tokenizer.decode(new, skip_special_tokens=True), len(new)


def test_local_generation_is_batched_exact_and_cached(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    chats = [
        chat(QUESTIONS[0]),
        [{"role": "user", "content": "Metformin?"}],
        chat(QUESTIONS[2], system="Answer briefly."),
        chat(QUESTIONS[3]),
    ]
    batched = LLM(local_args(tiny_model, tmp_path / "a", batch_size=3))
    results = batched.complete(chats)
    one_by_one = LLM(local_args(tiny_model, tmp_path / "b", batch_size=1)).complete(chats)
    assert results == one_by_one

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompts = [render(c) + "\nassistant:" for c in chats]
    assert prompts[1] == "user: Metformin?\nassistant:"
    for result, prompt in zip(results, prompts, strict=True):
        assert result.prompt_tokens == len(tokenizer(prompt)["input_ids"])
        text, generated = reference_generate(tiny_model, prompt, 12)
        assert (result.text, result.completion_tokens) == (text, generated)
        assert result.finish_reason == ("length" if generated == 12 else "stop")
        assert result.error is None and not result.cached

    usage = batched.usage
    assert (usage.requests, usage.completed, usage.cache_hits) == (4, 4, 0)
    assert usage.prompt_tokens == sum(r.prompt_tokens for r in results)
    assert usage.completion_tokens == sum(r.completion_tokens for r in results)

    again = batched.complete(chats)
    assert again == [Completion(**{**vars(r), "cached": True}) for r in results]
    assert batched.usage.requests == 4 and batched.usage.cache_hits == 4


def test_local_generation_uses_the_chat_template_and_samples_by_seed(tmp_path):
    from transformers import AutoTokenizer

    model = build_tiny_model(tmp_path / "model", CHAT_TEMPLATE)
    tokenizer = AutoTokenizer.from_pretrained(model)
    chats = [chat(QUESTIONS[1]), chat(QUESTIONS[4]), chat(QUESTIONS[5])]
    sampling = {"temperature": 1.0, "top_p": 0.95, "batch_size": 2}

    llm = LLM(local_args(model, tmp_path / "a", seed=3, **sampling))
    first = llm.complete(chats)
    prompt = f"<s>system\nYou are a careful medical educator.</s>\n<s>user\n{QUESTIONS[1]}</s>\n"
    assert llm.backend.render(chats[0]) == prompt + "<s>assistant\n"
    assert first[0].prompt_tokens == len(
        tokenizer(prompt + "<s>assistant\n", add_special_tokens=False)["input_ids"]
    )
    same_seed = LLM(local_args(model, tmp_path / "b", seed=3, **sampling)).complete(chats)
    other_seed = LLM(local_args(model, tmp_path / "c", seed=4, **sampling)).complete(chats)
    assert [r.text for r in same_seed] == [r.text for r in first]
    assert [r.text for r in other_seed] != [r.text for r in first]


def test_a_local_dry_run_counts_prompt_tokens_exactly_without_loading_the_model(
    tiny_model, tmp_path
):
    from transformers import AutoTokenizer

    llm = LLM(local_args(tiny_model, tmp_path, max_new_tokens=100), dry_run=True)
    chats = [chat(q) for q in QUESTIONS[:3]]
    results = llm.complete(chats)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    counts = [len(tokenizer(render(c) + "\nassistant:")["input_ids"]) for c in chats]
    assert [(r.error, r.prompt_tokens) for r in results] == [("dry_run", n) for n in counts]
    assert llm.usage.estimated_prompt_tokens == sum(counts)
    assert llm.usage.estimated_completion_tokens == 300
    assert llm.backend.model is None
