"""Words of an Arrow string column found on its UTF-8 bytes, in NumPy: no Python object per
word (Arrow's split into lists of strings, or a regex over every character, cost more than
the work done with the words).

>>> import pyarrow as pa
>>> raw, bounds = utf8_bytes(pa.array(["one two", "", " three "], pa.large_string()))
>>> starts, counts = word_starts(raw != ord(" "), bounds)
>>> starts.tolist(), counts.tolist()
([0, 4, 8], [2, 0, 1])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def utf8_bytes(text: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray]:
    """The values' UTF-8 bytes (a view, not a copy) and each string's ``[start, end)``
    bounds into them (``len(text) + 1`` offsets from 0)."""
    _, offset_buffer, data_buffer = text.buffers()
    bounds = np.frombuffer(offset_buffer, dtype=np.int64)[text.offset : text.offset + len(text) + 1]
    first, size = int(bounds[0]), int(bounds[-1] - bounds[0])
    if not size:
        return np.zeros(0, dtype=np.uint8), bounds - first
    return np.frombuffer(data_buffer, dtype=np.uint8, count=size, offset=first), bounds - first


def word_starts(in_word: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where words start (a word byte after a separator, or at a string's first byte), and
    how many each string has; ``in_word`` says which bytes belong to words."""
    docs = len(bounds) - 1
    if not len(in_word):
        return np.zeros(0, dtype=np.int64), np.zeros(docs, dtype=np.int64)
    opens = in_word.copy()
    opens[1:] &= ~in_word[:-1]
    firsts = bounds[:-1][bounds[:-1] < len(in_word)]
    opens[firsts] = in_word[firsts]
    starts = np.flatnonzero(opens)
    owner = np.searchsorted(bounds, starts, side="right") - 1
    return starts, np.bincount(owner, minlength=docs)[:docs].astype(np.int64)
