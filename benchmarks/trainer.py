"""Trainer throughput: `python -m trainer` against the Hugging Face `Trainer`, same model,
same rows, same batch, in the same run.

    python benchmarks/trainer.py --repeats 3                      # CPU, a 9M-parameter LLaMA
    python benchmarks/trainer.py --repeats 3 --compile both       # torch.compile on both sides
    python benchmarks/trainer.py --repeats 3 --dtype bf16         # bf16 autocast (AMX CPUs)
    python benchmarks/trainer.py --repeats 3 --checkpointing 1 --checkpointing-mode selective
    python benchmarks/trainer.py --shape tiny --seq 128 --steps 100   # the tests' model
    python benchmarks/trainer.py --device cuda --shape 1b         # one GPU, bf16, seq 2048
    python benchmarks/trainer.py --device cuda --shape 8b-8l --micro 2 --checkpointing 1

Both sides train the same randomly initialised LLaMA (``trainer.model.build``, same seed) on the
same packed rows (``trainer.data`` + ``trainer.mixture`` over generated medical-style documents
written as a pmc-data dataset folder), with the same global batch, optimizer (AdamW), schedule,
clipping and activation checkpointing, each in its own subprocess, alternately
(``--repeats``), so that both see the same machine load. The HF Trainer gets each row's input
ids, position ids (so transformers applies the same document masking) and our labels as
``shift_labels`` (so it trains the same targets). On CUDA it runs under torchrun with FSDP2
through accelerate (``fsdp=True``, ``fsdp_version: 2``, one unit per decoder layer), in bf16,
as the issue's peer; ours runs ``torchrun -m trainer``, which with one process does not shard
(bf16 by autocast; see trainer/model.py). Both use fused AdamW (HF's default optimizer).

Throughput counts steady-state steps only (the first ``--warmup`` are dropped): the wall time
between consecutive step ends, so data loading, optimizer and logging are inside. MFU uses
``trainer.metrics.flops_per_token`` (6N + 12 L d T) against the measured peak of a large
matmul with the same threads (CPU: fp32, n=1024; GPU: bf16, n=8192) and, on GPU, against the
data-sheet dense bf16 peak (H100/H200: 989 TFLOP/s).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

SHAPES = {
    # the tests' model: per-step overheads, not matmuls, decide its speed
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512},
    # ~10M parameters: big enough that matmuls, not Python, dominate a CPU step
    "small": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 6,
              "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 8192},
    # 1.1B: the TinyLlama shape (LLaMA-2 architecture, 32k vocabulary)
    "1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
           "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000},
    # LLaMA-3-8B's layer and vocabulary shapes with 8 of its 32 layers, to fit one GPU
    "8b-8l": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 8,
              "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256},
}  # fmt: skip

WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "patient patients clinical trial randomised cohort mortality infection antibiotic dose renal "
    "hepatic cardiac pulmonary therapy outcome risk ratio serum plasma insulin glucose pressure "
    "artery vein tumour lesion biopsy diagnosis prognosis treatment placebo adverse event "
    "hospital admission baseline increase decrease significant association incidence anaemia "
    "haemoglobin fracture mobilisation surgery recovery chapter textbook physiology kidney liver "
    "lung heart brain neuron receptor enzyme protein gene expression mutation pathway inhibitor"
).split()


def write_corpus(folder: Path, tokens_wanted: int) -> Path:
    """Generated documents as a pmc-data dataset folder (id, text, source, license)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = folder / "data" / "train-00000-of-00001.parquet"
    if target.exists():
        return folder
    rng, rows, words = random.Random(0), [], 0
    while words < tokens_wanted:  # about one token per word with a BPE trained on this text
        n = rng.randint(100, 3000)
        text = " ".join(
            rng.choice(WORDS) if rng.random() < 0.9 else str(rng.randint(1, 999)) for _ in range(n)
        )
        rows.append(
            {"id": f"bench:{len(rows)}", "text": text, "source": "bench", "license": "CC0-1.0"}
        )
        words += n
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), target)
    return folder


def write_config(args, work: Path) -> Path:
    import yaml

    steps = args.warmup + args.steps
    corpus = write_corpus(work / "corpus", int(steps * args.batch * args.seq * 1.3))
    cfg = {
        "task": "pretrain",
        "out_dir": str(work / "ours"),
        "device": args.device,
        "tokenizer": f"train:{min(4096, SHAPES[args.shape]['vocab_size'])}",
        "data": {"sources": {"bench": {"path": str(corpus)}}, "seq_len": args.seq,
                 "cache_dir": str(work / "cache")},
        "model": {"config": {"model_type": "llama", "max_position_embeddings": max(2048, args.seq),
                             **SHAPES[args.shape]},
                  "attn": args.attn, "activation_checkpointing": args.checkpointing,
                  "checkpointing_mode": args.checkpointing_mode,
                  "compile": args.compile != "none"},
        "train": {"global_batch_rows": args.batch, "micro_batch_rows": args.micro or args.batch,
                  "max_steps": steps, "lr": 2e-5, "warmup_steps": 2, "weight_decay": 0.0,
                  "betas": [0.9, 0.999], "grad_clip": 1.0, "log_every": 1,
                  "dtype": args.dtype},
        "eval": {"max_rows": 0},
        "checkpoint": {"every": 0, "resume": False},
        "export": {"at_end": False},
    }  # fmt: skip
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def launch(args, module: list[str], distributed: bool = False) -> list[str]:
    if args.device == "cuda" or distributed:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "1", *module]  # fmt: skip
    return [sys.executable, *module]


def run_ours(args, config: Path, work: Path) -> tuple[list[float], float]:
    """Step times of `python -m trainer` (its metrics.jsonl), warm-up dropped, and its peak
    memory in GiB (``trainer.metrics.memory_gib``: peak RSS on CPU, CUDA allocations on GPU)."""
    log = work / "ours.log"
    command = launch(args, ["-m", "trainer", "--config", str(config)])
    with open(log, "w") as out:
        subprocess.run(command, check=True, cwd=ROOT, env=env(args), stdout=out, stderr=out)
    lines = (work / "ours" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [r["step_time_s"] for r in records][args.warmup :], records[-1]["memory_gib"]


def run_hf(args, config: Path, work: Path) -> tuple[list[float], float]:
    """Step times of the HF Trainer worker (this script with --worker), warm-up dropped, and
    its peak memory in GiB, measured as ours is."""
    result = work / "hf.json"
    log = work / "hf.log"
    worker = [str(HERE / "trainer.py"), "--worker", str(config), "--result", str(result),
              "--compile", args.compile, "--hf-fsdp", "on" if args.hf_fsdp else "off",
              "--dtype", args.dtype]  # fmt: skip
    with open(log, "w") as out:
        command = launch(args, worker, args.hf_fsdp)
        subprocess.run(command, check=True, cwd=ROOT, env=env(args), stdout=out, stderr=out)
    found = json.loads(result.read_text())
    return found["step_times"][args.warmup :], found["memory_gib"]


def env(args) -> dict:
    """The children's environment: the repository first on the path, then whatever the path
    held (where a GPU machine's missing packages were installed: see RESULTS.md)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": path}  # fmt: skip


def hf_worker(config_path: str, result: str, compile_: bool, fsdp_on: bool, bf16: bool) -> None:
    """Train with transformers.Trainer on our rows and write the step-end times."""
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from trainer import config as configs
    from trainer import metrics
    from trainer import model as models
    from trainer.mixture import Mixture
    from trainer.train import load_data

    cfg = configs.load(config_path)
    cuda = cfg.device == "cuda"
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(Path(cfg.out_dir) / "tokenizer")
    rows, _ = load_data(cfg, tokenizer)
    mixture = Mixture(rows, {"bench": 1}, cfg.train.seed)
    tc = cfg.train
    count = tc.max_steps * tc.global_batch_rows
    dataset = []
    for g in range(count):
        row = {k: v[0] for k, v in mixture.batch([g]).items() if k != "lengths"}
        dataset.append({**row, "shift_labels": row["labels"]})
    model = models.build(cfg.model, tokenizer, torch.device(device), tc.seed)
    extra = {}
    if cfg.model.activation_checkpointing and not fsdp_on:  # with FSDP, its own setting below
        extra = {"gradient_checkpointing": True,
                "gradient_checkpointing_kwargs": {"use_reentrant": False}}  # fmt: skip
    if fsdp_on:
        extra = {"fsdp": True, "fsdp_config": {
            "fsdp_version": 2, "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"],
            "reshard_after_forward": True,
            "activation_checkpointing": bool(cfg.model.activation_checkpointing)}}  # fmt: skip
    arguments = TrainingArguments(
        output_dir=str(Path(cfg.out_dir).parent / "hf"),
        per_device_train_batch_size=tc.micro_batch_rows,
        gradient_accumulation_steps=tc.global_batch_rows // tc.micro_batch_rows,
        max_steps=tc.max_steps,
        learning_rate=tc.lr,
        lr_scheduler_type="cosine",
        warmup_steps=tc.warmup_steps,
        weight_decay=tc.weight_decay,
        adam_beta1=tc.betas[0],
        adam_beta2=tc.betas[1],
        max_grad_norm=tc.grad_clip,
        optim="adamw_torch_fused",  # its default, like ours
        bf16=bf16,  # on CPU: autocast to bf16, as ours does
        use_cpu=not cuda,
        logging_steps=10**9,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        torch_compile=compile_,
        **extra,
    )
    ends: list[float] = []

    class Timer(TrainerCallback):
        def on_train_begin(self, *_, **__):
            ends.append(time.perf_counter())

        def on_step_end(self, *_, **__):
            if cuda:
                torch.cuda.synchronize()
            ends.append(time.perf_counter())

    class InOrder(Trainer):  # the rows in our order, so each step holds the same rows as ours
        def _get_train_sampler(self, *_, **__):
            return SequentialSampler(self.train_dataset)

    trainer = InOrder(model=model, args=arguments, train_dataset=dataset, callbacks=[Timer()])
    if fsdp_on and not trainer.is_fsdp_enabled:  # the peer must be what the issue names
        raise SystemExit("the HF Trainer did not enable FSDP (accelerate shards on GPUs only)")
    trainer.train()
    if int(os.environ.get("RANK", 0)) == 0:
        times = [b - a for a, b in itertools.pairwise(ends)]
        memory = metrics.memory_gib(torch.device(device))
        wrapped = type(trainer.model_wrapped).__name__  # e.g. FSDPLlamaForCausalLM, DDP
        Path(result).write_text(
            json.dumps({"step_times": times, "memory_gib": memory, "wrapped": wrapped})
        )


def versions() -> str:
    import torch

    names = ["torch", "transformers", "accelerate"]
    found = ", ".join(f"{n} {metadata.version(n)}" for n in names)
    return f"{found}, Python {platform.python_version()}, torch threads {torch.get_num_threads()}"


def machine(device: str) -> str:
    import torch

    if device == "cuda":
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores"
    cpuinfo = (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    )
    names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    model = names[0] if names else platform.processor()
    return f"{platform.machine()}, {model}, {os.cpu_count()} cores, no GPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--shape", choices=list(SHAPES), default=None)
    parser.add_argument("--seq", type=int, default=None, help="default 256 on CPU, 2048 on GPU")
    parser.add_argument("--batch", type=int, default=None, help="global batch in rows")
    parser.add_argument("--micro", type=int, default=None, help="rows per forward (default all)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, alternating")
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per process (CPU)")
    parser.add_argument("--checkpointing", type=int, default=0, help="0 off, k every k-th layer")
    parser.add_argument(
        "--checkpointing-mode",
        choices=["full", "selective"],
        default="full",
        help="ours (the HF Trainer's gradient checkpointing is always full)",
    )
    parser.add_argument("--attn", default="sdpa")
    parser.add_argument(
        "--dtype", choices=["auto", "fp32", "bf16"], default="auto",
        help="compute dtype on both sides (auto: bf16 on CUDA, fp32 on CPU; bf16 on a CPU "
        "is autocast, fast where the CPU has AMX or AVX512-BF16)",
    )  # fmt: skip
    parser.add_argument(
        "--compile", choices=["none", "ours", "both"], default="none",
        help="torch.compile: ours per decoder layer (model.compile), HF's torch_compile=True",
    )  # fmt: skip
    parser.add_argument("--work", type=Path, default=HERE / ".data" / "trainer")
    parser.add_argument(
        "--hf-fsdp", choices=["auto", "on", "off"], default="auto",
        help="wrap the HF Trainer's model in FSDP2 (auto: on CUDA, as the issue's peer)",
    )  # fmt: skip
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.hf_fsdp = args.hf_fsdp == "on" or (args.hf_fsdp == "auto" and args.device == "cuda")
    if args.hf_fsdp and args.device == "cpu" and not args.worker:
        parser.error("--hf-fsdp on needs --device cuda: accelerate applies FSDP to GPUs only "
                     "(on CPU the HF Trainer would run plain DDP)")  # fmt: skip
    if args.worker:  # given the dtype main() resolved: the worker is not told the device
        hf_worker(args.worker, args.result, args.compile == "both", args.hf_fsdp,
                  args.dtype == "bf16")  # fmt: skip
        return
    gpu = args.device == "cuda"
    bf16 = args.dtype == "bf16" or (args.dtype == "auto" and gpu)
    args.dtype = "bf16" if bf16 else "fp32"  # what both sides are given
    args.shape = args.shape or ("1b" if gpu else "small")
    args.seq = args.seq or (2048 if gpu else 256)
    args.batch = args.batch or (16 if gpu else 8)
    args.micro = args.micro or (4 if gpu else None)
    args.steps = args.steps or (20 if gpu else 15)

    import torch

    from trainer import metrics

    torch.set_num_threads(args.threads)
    work = args.work / f"{args.shape}-{args.device}-s{args.seq}-b{args.batch}-{args.dtype}"
    work.mkdir(parents=True, exist_ok=True)
    config = write_config(args, work)
    ours, hf = [], []
    for _ in range(args.repeats):  # alternate, so both sides see the same machine load
        ours.append(run_ours(args, config, work))
        hf.append(run_hf(args, config, work))

    from trainer import config as configs
    from trainer import model as models

    cfg = configs.load(config)
    with torch.device("meta"):
        from transformers import AutoConfig, AutoModelForCausalLM

        shape = AutoModelForCausalLM.from_config(
            AutoConfig.for_model(**cfg.model.config)
        )  # parameter counts only
    flops = metrics.flops_per_token(models.flops_shape(shape), args.seq)
    if gpu:
        measured = metrics.measured_peak("cuda", 8192, torch.bfloat16)
        nominal = metrics.peak_flops(torch.device("cuda", 0))
    else:  # the peak of the dtype the matmuls run in (bf16 on AMX is ~8x fp32)
        measured = metrics.measured_peak(dtype=torch.bfloat16 if bf16 else torch.float32)
        nominal = None
    # tokens per timed step: the rows' real (unpadded) tokens, the same rows on both sides
    from transformers import AutoTokenizer

    from trainer.mixture import Mixture
    from trainer.train import load_data

    rows, _ = load_data(cfg, AutoTokenizer.from_pretrained(work / "ours" / "tokenizer"))
    mixture = Mixture(rows, {"bench": 1}, cfg.train.seed)
    step_rows = [
        range(s * args.batch, (s + 1) * args.batch)
        for s in range(args.warmup, args.warmup + args.steps)
    ]
    tokens = sum(int(mixture.batch(list(r))["lengths"].sum()) for r in step_rows)
    rates = {}
    mode = f" (ours {args.checkpointing_mode}, HF full)" if args.checkpointing else ""
    print(f"\ncommand: {' '.join(sys.argv)}")
    print(f"machine: {machine(args.device)}\nversions: {versions()}")
    print(
        f"model: LLaMA {args.shape} ({models.flops_shape(shape)['params'] / 1e6:.1f}M parameters), "
        f"seq {args.seq}, global batch {args.batch} rows, micro-batch {args.micro or args.batch}, "
        f"activation checkpointing {args.checkpointing}{mode}, attention {args.attn}, "
        f"compile {args.compile}, dtype {'bf16' if bf16 else 'fp32'}, "
        f"{args.steps} timed steps after {args.warmup}, "
        f"{args.repeats} runs each; {flops / 1e6:.1f} MFLOP per token; measured peak "
        f"{measured / 1e9:,.0f} GFLOP/s\n"
    )
    memory = "peak GPU memory" if gpu else "peak RSS"
    header = f"| trainer | run | tokens/s | ms/step | {memory} GiB | MFU (measured peak) |"
    header += " MFU (data-sheet peak) |" if nominal else ""
    print(header)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|" if nominal else ""))
    for name, runs in (("ours (`python -m trainer`)", ours), ("HF Trainer", hf)):
        per_run = [tokens / sum(times) for times, _ in runs]
        rates[name] = statistics.median(per_run)
        for i, (rate, (times, gib)) in enumerate(zip(per_run, runs, strict=True), start=1):
            row = f"| {name} | {i} | {rate:,.0f} | {1000 * statistics.median(times):.1f} | "
            row += f"{gib:.2f} | {flops * rate / measured:.1%} |"
            row += f" {flops * rate / nominal:.1%} |" if nominal else ""
            print(row)
    ours_rate, hf_rate = rates.values()
    print(f"\nratio (median tokens/s, ours / HF Trainer): **{ours_rate / hf_rate:.2f}x**")
    wrapped = json.loads((work / "hf.json").read_text()).get("wrapped")
    print(f"the HF Trainer's model, as it trained: {wrapped}")


if __name__ == "__main__":
    main()
