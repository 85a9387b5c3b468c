"""Load built dataset folders with ``datasets`` and print what a researcher would see.

python -m pmc_data.demo build/demo build/papers build/instructions
"""

from __future__ import annotations

import sys


def main(folder: str) -> None:
    from datasets import load_dataset

    dataset = load_dataset(folder)
    print(f"\nload_dataset({folder!r}) ->")
    print(dataset)
    for split, rows in dataset.items():
        first = rows[0]
        print(f"{split}[0]: id={first['id']!r} license={first['license']!r}")
        if "text" in first:
            print(f"  {first['text'][:160]}...")
        else:  # an instruction row
            print(f"  instruction: {first['instruction']}\n  input: {first['input'][:120]}...")
            print(f"  output: {first['output'][:160]}")


if __name__ == "__main__":
    for folder in sys.argv[1:] or ["build/demo"]:
        main(folder)
