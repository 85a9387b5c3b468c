"""Corpus statistics of a build and the plots in ``report/``.

>>> table = pa.table({"text": ["two words"], "source": ["pmc"], "license": ["CC0-1.0"]})
>>> stats = CorpusStats()
>>> stats.add(table, measure(table, "medc_k"))
>>> stats.summary()["words"], stats.summary()["licenses"]
(2, {'CC0-1.0': 1})
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TEXT_COLUMNS = {"medc_k": ("text",), "medc_i": ("instruction", "input", "output")}
PLOTS = {
    "funnel": "Rows after each step",
    "lengths": "Characters per row",
    "licenses": "Rows per license",
    "sources": "Rows per source",
}


MEASURES = ("_chars", "_words", "_bytes")
_SLICE = 8192


def measure(table: pa.Table, schema: str) -> dict[str, np.ndarray]:
    """Characters, words and data bytes of each row, over the schema's text columns.

    Words are whitespace-separated pieces. Bytes are the UTF-8 text plus a fixed 64 per row
    for the other columns: computed per row, so shard counts do not depend on how the input
    was cut. Runs in the workers; the writer only adds the arrays up.
    """
    n = len(table)
    chars = np.zeros(n, dtype=np.int64)
    words = np.zeros(n, dtype=np.int64)
    sizes = np.full(n, 64, dtype=np.int64)
    for column in TEXT_COLUMNS[schema]:
        text = pc.fill_null(table.column(column), "")
        chars += pc.utf8_length(text).to_numpy(zero_copy_only=False)
        sizes += pc.binary_length(text).to_numpy(zero_copy_only=False)
        # Sliced so the split pieces of one slice, not of the whole unit, are in memory.
        for start in range(0, n, _SLICE):
            pieces = pc.utf8_split_whitespace(text.slice(start, _SLICE))
            words[start : start + _SLICE] += pc.list_value_length(pieces).to_numpy(
                zero_copy_only=False
            )
    return {"_chars": chars, "_words": words, "_bytes": sizes}


class CorpusStats:
    """Running totals of one split: rows, characters, words, and mixes by source and license.

    Words are whitespace-separated pieces, counted in Arrow: a tokenizer-free measure that is
    the same on every machine (a LLaMA tokenizer gives about 1.3-1.5 tokens per word on
    English biomedical text).
    """

    def __init__(self) -> None:
        self.rows = 0
        self.chars = 0
        self.words = 0
        self.bytes = 0
        self.lengths: list[np.ndarray] = []
        self.sources: Counter[str] = Counter()
        self.source_words: Counter[str] = Counter()
        self.licenses: Counter[str] = Counter()

    def add(self, table: pa.Table, measures: dict[str, np.ndarray]) -> None:
        """Count ``table``'s rows, given their :func:`measure` arrays."""
        chars, words = measures["_chars"], measures["_words"]
        self.rows += len(table)
        self.chars += int(chars.sum())
        self.words += int(words.sum())
        self.bytes += int(measures["_bytes"].sum())
        self.lengths.append(chars)
        sources = table.column("source").to_pylist()
        self.sources.update(sources)
        for source, n in zip(sources, words.tolist(), strict=True):
            self.source_words[source] += n
        self.licenses.update(table.column("license").to_pylist())

    def length_array(self) -> np.ndarray:
        return np.concatenate(self.lengths) if self.lengths else np.zeros(0, dtype=np.int64)

    def summary(self) -> dict:
        lengths = self.length_array()
        quantiles = (
            {f"p{q}": int(np.percentile(lengths, q)) for q in (5, 50, 95)} if len(lengths) else {}
        )
        return {
            "rows": self.rows,
            "characters": self.chars,
            "words": self.words,
            "bytes": self.bytes,
            "chars_per_row": quantiles,
            "sources": dict(sorted(self.sources.items())),
            "words_per_source": dict(sorted(self.source_words.items())),
            "licenses": dict(sorted(self.licenses.items())),
        }


def merged_stats(stats: dict[str, CorpusStats]) -> dict:
    """Totals over all splits: rows, characters, words, source and license mixes."""
    totals: dict = {
        "rows": 0,
        "characters": 0,
        "words": 0,
        "sources": {},
        "licenses": {},
        "words_per_source": {},
    }
    for s in stats.values():
        summary = s.summary()
        for key in ("rows", "characters", "words"):
            totals[key] += summary[key]
        for key in ("sources", "licenses", "words_per_source"):
            for name, n in summary[key].items():
                totals[key][name] = totals[key].get(name, 0) + n
    for key in ("sources", "licenses", "words_per_source"):
        totals[key] = dict(sorted(totals[key].items()))
    return totals


def load_plotting() -> None:
    """Import matplotlib's pyplot on the Agg backend: on first use, since it costs ~40 MiB
    and 0.3 s that a process drawing nothing should not pay (the runner's plotting process
    calls it ahead, to warm up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def write_plots(steps: list[dict], stats: dict[str, CorpusStats], folder: Path) -> list[str]:
    """The four PNGs of ``report/``; returns their paths relative to the dataset folder."""
    load_plotting()
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    totals = merged_stats(stats)
    paths = []

    def save(fig, name: str) -> None:
        # Tight bounding box: step and license names are long and must not be cut.
        fig.savefig(
            folder / f"{name}.png", dpi=100, bbox_inches="tight", metadata={"Software": None}
        )
        plt.close(fig)
        paths.append(f"report/{name}.png")

    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.45 * len(steps)))
    labels = [s["step"] for s in steps]
    outs = [s["out"] for s in steps]
    ax.barh(labels[::-1], outs[::-1], color="#4C72B0")
    for y, value in enumerate(outs[::-1]):
        ax.text(value, y, f" {value:,}", va="center", fontsize=8)
    ax.set_xlabel("rows kept")
    ax.set_title(PLOTS["funnel"])
    save(fig, "funnel")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    every = [np.maximum(s.length_array(), 1) for s in stats.values()]
    if any(len(lengths) for lengths in every):
        joined = np.concatenate(every)
        low, high = np.log10(joined.min()) - 0.05, np.log10(joined.max()) + 0.05
        bins = np.logspace(low, high, 40)  # shared by the splits, so they compare
        for split, lengths in zip(stats, every, strict=True):
            if len(lengths):
                ax.hist(lengths, bins=bins, alpha=0.7, label=split)
        ax.legend()
    ax.set_xscale("log")
    ax.set_xlabel("characters per row (log)")
    ax.set_ylabel("rows")
    ax.set_title(PLOTS["lengths"])
    save(fig, "lengths")

    for name, key in (("licenses", "licenses"), ("sources", "sources")):
        mix = totals[key]
        fig, ax = plt.subplots(figsize=(7, 1.5 + 0.4 * len(mix)))
        ax.barh(list(mix)[::-1], list(mix.values())[::-1], color="#55A868")
        ax.set_xlabel("rows")
        ax.set_title(PLOTS[name])
        save(fig, name)
    return paths
