"""LLM backend throughput: requests to a server with a fixed latency, and cache hits.

    python benchmarks/synth.py                     # concurrency 1, 8, 32, 64; 50,000 cache hits
    python benchmarks/synth.py --concurrency 8 --seconds 1 --runs 1 --hits 5000   # quick

The server is ``tests/llm_server.py`` in its own process (so that it and the client do not
share one interpreter lock), answering every chat after a fixed ``--latency`` (200 ms).
With ``c`` requests in flight the ideal throughput is ``c / latency``; the target is at least
0.9 of it. Each concurrency runs on a fresh cache, with ``c`` times as many chats as fit in
about ``--seconds`` at the ideal rate (64 at least), so every request slot stays busy. A
fresh ``LLM`` first completes one untimed round of ``c`` chats, which opens its connections
(a one-time cost per process, reported apart as "first round"); the time is then one
``LLM.complete`` call, from the first request to the last answer stored. Each setting runs
``--runs`` times; the table shows the median. The server reports the most requests it had in
flight at once, to show the client kept ``c`` going, and its own time per request, to show
it adds nothing to the latency.

Cache hits: ``--hits`` distinct chats are stored in a cache (untimed), then a fresh ``LLM``
answers them all from it in one ``complete`` call: key hashing, the batched SQLite look-up and
building the results, timed as the median of three runs. The target is 20,000 items/s.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import psutil

from pmc_data.synth.cache import Entry
from pmc_data.synth.llm import LLM, LLMArgs

HERE = Path(__file__).resolve().parent
SERVER = HERE.parent / "tests" / "llm_server.py"
TARGET_RATIO = 0.9
TARGET_HITS = 20_000

SYSTEM = "You are a medical educator. Explain the reasoning step by step, then give the answer."
QUESTION = (
    "Case {i}: A {age}-year-old presents with fever, productive cough and right-sided pleuritic "
    "chest pain for three days. Temperature 38.9 C, respiratory rate 26, crackles at the right "
    "base. Which is the most appropriate initial management?\nA. Oral amoxicillin\n"
    "B. Intravenous co-amoxiclav and clarithromycin\nC. Chest drain\nD. Observation"
)


def chats(n: int, offset: int = 0) -> list[list[dict]]:
    return [
        [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION.format(i=offset + i, age=20 + (offset + i) % 70)},
        ]
        for i in range(n)
    ]


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    return server, server.stdout.readline().strip()


def server_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url.removesuffix('/v1')}/stats") as response:
        return json.load(response)


def throughput(base_url: str, concurrency: int, latency: float, seconds: float, run: int) -> dict:
    """One run at one concurrency, on a fresh cache and a fresh ``LLM``."""
    n = max(64, concurrency * math.ceil(seconds / latency))
    n = concurrency * math.ceil(n / concurrency)  # whole rounds: the ideal time is exact
    offset = (run * 1000 + concurrency) * 1_000_000  # chats no other run asked
    cache = tempfile.mkdtemp(prefix="pmc-synth-bench-")
    try:
        args = LLMArgs(
            model="bench-model", base_url=base_url, concurrency=concurrency, cache_dir=cache
        )
        with LLM(args) as llm:
            # One untimed round opens the connections (and the event loop), as they are for
            # the whole of a long run; its time is reported apart.
            started = time.perf_counter()
            llm.complete(chats(concurrency, offset=offset + n))
            first_round = time.perf_counter() - started
            server_stats(base_url)  # resets its counters
            started = time.perf_counter()
            results = llm.complete(chats(n, offset=offset))
            elapsed = time.perf_counter() - started
            stats = server_stats(base_url)
            usage = llm.take_usage()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    failed = [r.error for r in results if r.text is None]
    if failed or usage.requests != n + concurrency or stats["requests"] != n:
        raise RuntimeError(f"{len(failed)} failed ({failed[:3]}), {usage}, server {stats}")
    return {
        "items": n,
        "seconds": elapsed,
        "ratio": n / elapsed / (concurrency / latency),
        "first_round": first_round,
        "in_flight": stats["max_in_flight"],
        "server_seconds": stats["mean_seconds"],
    }


def cache_hits(n: int) -> tuple[float, int]:
    """Median seconds to answer ``n`` chats from the cache, and the cache file's size."""
    folder = tempfile.mkdtemp(prefix="pmc-synth-cache-")
    try:
        args = LLMArgs(model="bench-model", base_url="http://127.0.0.1:9/v1", cache_dir=folder)
        work = chats(n)
        filler = LLM(args)
        answer = "###Rationale: " + "The features suggest pneumonia. " * 12 + "###Answer: B"
        filler.cache.put_many((filler.key(c), Entry(answer, 120, 110, "stop")) for c in work)
        times = []
        for _ in range(3):
            llm = LLM(args)  # a fresh one each time: a new connection, nothing memoised
            started = time.perf_counter()
            results = llm.complete(work)
            times.append(time.perf_counter() - started)
            if (
                llm.usage.cache_hits != n
                or llm.usage.requests
                or not all(r.cached for r in results)
            ):
                raise RuntimeError(f"expected {n} cache hits, got {llm.usage}")
        size = sum(f.stat().st_size for f in filler.cache.path.parent.iterdir())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return statistics.median(times), size


def machine() -> str:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        if names:
            model = names[0].split(":", 1)[1].strip()
    return f"{model}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB"


def versions() -> str:
    names = ["openai", "httpx", "httpx2"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return (
        ", ".join(found)
        + f", SQLite {__import__('sqlite3').sqlite_version}"
        + (f", Python {platform.python_version()}")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per request")
    parser.add_argument("--seconds", type=float, default=3.0, help="about this long per setting")
    parser.add_argument("--runs", type=int, default=3, help="runs per concurrency (median)")
    parser.add_argument("--hits", type=int, default=50_000, help="cached chats to read back")
    args = parser.parse_args()

    print(f"command: python {' '.join(sys.argv)}")
    print(f"machine: {machine()}")
    print(f"versions: {versions()}")
    server, base_url = start_server(args.latency)
    try:
        runs = {
            c: [throughput(base_url, c, args.latency, args.seconds, r) for r in range(args.runs)]
            for c in args.concurrency
        }
    finally:
        server.terminate()
        server.wait()

    print(
        f"\nServer latency {args.latency * 1000:.0f} ms; ideal = concurrency / latency; target: "
        f"achieved >= {TARGET_RATIO} x ideal. Median of {args.runs} runs (range in brackets); "
        "server ms = its mean time per request, body read to answer written.\n"
    )
    print("| concurrency | items | seconds | items/s | ideal items/s | achieved / ideal | "
          "server max in flight | server ms | first round s | target |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for c, results in runs.items():
        ratios = sorted(r["ratio"] for r in results)
        middle = sorted(results, key=lambda r: r["ratio"])[len(results) // 2]
        ideal = c / args.latency
        verdict = "met" if middle["ratio"] >= TARGET_RATIO else "**not met**"
        spread = f" ({ratios[0]:.3f}-{ratios[-1]:.3f})" if len(ratios) > 1 else ""
        print(
            f"| {c} | {middle['items']:,} | {middle['seconds']:.2f} | "
            f"{middle['items'] / middle['seconds']:,.1f} | {ideal:,.0f} | "
            f"{middle['ratio']:.3f}{spread} | {max(r['in_flight'] for r in results)} | "
            f"{1000 * middle['server_seconds']:.1f} | {middle['first_round']:.2f} | {verdict} |"
        )

    if args.hits:
        seconds, size = cache_hits(args.hits)
        rate = args.hits / seconds
        verdict = "met" if rate >= TARGET_HITS else "**not met**"
        print(
            f"\n| cache hits | seconds (median of 3) | items/s | target {TARGET_HITS:,}/s |\n"
            f"|---:|---:|---:|---|\n"
            f"| {args.hits:,} | {seconds:.3f} | {rate:,.0f} | {verdict} |\n\n"
            f"cache file: {size / 2**20:.1f} MiB for {args.hits:,} entries"
        )


if __name__ == "__main__":
    main()
