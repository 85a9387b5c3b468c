"""``python -m trainer --config FILE [key=value ...]`` (or under ``torchrun ... -m trainer``)."""

from __future__ import annotations

import argparse
import sys

from trainer.config import ConfigError, load
from trainer.train import run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Continued pretraining and instruction tuning with FSDP2.",
        epilog="example: python -m trainer --config trainer/configs/tiny_cpu.yaml "
        "train.max_steps=10 data.sources.papers.path=build/papers",
    )
    parser.add_argument("--config", required=True, help="a YAML file (trainer/configs/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value settings over the file")
    args = parser.parse_args(argv)
    try:
        cfg = load(args.config, args.overrides)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
