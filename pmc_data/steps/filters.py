"""Generic filters: document length in words and characters.

>>> import pyarrow as pa
>>> from pmc_data.steps.filters import LengthFilter, LengthFilterArgs
>>> step = LengthFilter(LengthFilterArgs(min_words=3))
>>> step.reasons(pa.table({"text": ["one two three", "too short"]})).to_pylist()
[None, 'too_short']
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pmc_data.registry import Filter, StepArgs, register_step


class LengthFilterArgs(StepArgs):
    #: Bounds on whitespace-separated words; ``null`` means no bound.
    min_words: int | None = None
    max_words: int | None = None
    #: Bounds on characters (code points).
    min_chars: int | None = None
    max_chars: int | None = None


@register_step
class LengthFilter(Filter):
    """Drops rows whose text is outside the bounds: reasons ``too_short`` and ``too_long``."""

    name = "length_filter"
    Args = LengthFilterArgs
    threads = True  # Arrow and NumPy

    def reasons(self, batch: pa.Table) -> pa.Array:
        args = self.args
        text = pc.fill_null(batch.column(self.text_column), "")
        # Vectorised in Arrow and NumPy: a 1 GB shard is measured without a Python loop.
        words = pc.count_substring_regex(text, r"\S+").to_numpy(zero_copy_only=False)
        chars = pc.utf8_length(text).to_numpy(zero_copy_only=False)
        short = np.zeros(len(batch), dtype=bool)
        long = np.zeros(len(batch), dtype=bool)
        for values, low, high in (
            (words, args.min_words, args.max_words),
            (chars, args.min_chars, args.max_chars),
        ):
            if low is not None:
                short |= values < low
            if high is not None:
                long |= values > high
        reasons = np.where(short, "too_short", np.where(long, "too_long", None))
        return pa.array(reasons.tolist(), pa.string())
