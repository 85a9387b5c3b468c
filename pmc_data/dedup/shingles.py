"""Word n-gram shingles and MinHash signatures, vectorised over a batch of documents.

Everything here is NumPy and Arrow arithmetic over whole batches: no Python call per word or
per shingle. Hashes are fixed functions of the text (polynomial word hashes with the
MurmurHash3 finalizer), so they are the same in every process, on every run and every
machine; MinHash permutations come from ``datasketch`` and signatures are identical to
``datasketch.MinHash(scheme="affine32").update_batch`` on the same shingle hashes.

>>> import pyarrow as pa
>>> hashes, offsets = shingle_hashes(pa.array(["The cat sat on the mat today."]), n=5)
>>> len(hashes), offsets.tolist()
(3, [0, 3])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pmc_data.utf8_words import utf8_bytes, word_starts

# Punctuation and symbols become spaces: "beta-blocker" -> "beta blocker", "(n=12)" -> "n 12".
_NOT_WORD = r"[^\p{L}\p{N}\s]+"
_P = np.uint64(0x100000001B3)  # FNV prime: odd, so the polynomial hash is a bijection per length
_MIX = np.array(  # odd multipliers for positions inside an n-gram / a band
    [(0x9E3779B97F4A7C15 + 2 * k * 0x632BE59BD9B4E019) % 2**64 | 1 for k in range(64)],
    dtype=np.uint64,
)
#: Text bytes hashed together. The word hash keeps one 8-byte running sum and a few byte
#: masks per text byte, so 512 KiB of text costs ~6 MiB at a time, whatever the unit size.
_SLICE_BYTES = 512 << 10


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: every input bit affects every output bit."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch applies it before its permutations)."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16))
        h = h * np.uint32(0x85EBCA6B)
        h = h ^ (h >> np.uint32(13))
        h = h * np.uint32(0xC2B2AE35)
        return h ^ (h >> np.uint32(16))


def spaced(texts: pa.Array | pa.ChunkedArray) -> pa.LargeStringArray:
    """Texts lower-cased, with every run of characters that are neither letters, digits nor
    ASCII whitespace (RE2's ``\\s``) made one space: words are what whitespace separates."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = pc.fill_null(texts.cast(pa.large_string()), "")
    return pc.replace_substring_regex(pc.utf8_lower(texts), _NOT_WORD, " ")


def words(texts: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """Normalised words: lower-cased, punctuation split off, whitespace-separated."""
    return pc.utf8_split_whitespace(pc.utf8_trim_whitespace(spaced(texts)))


#: The bytes that separate words in :func:`spaced` text: ASCII whitespace.
_SEPARATOR = np.zeros(256, dtype=bool)
_SEPARATOR[[9, 10, 11, 12, 13, 32]] = True
_P_INVERSE = np.uint64(pow(int(_P), -1, 2**64))
_POWERS_KEPT = 1 << 20  # powers of up to 1 Mi positions kept between calls (16 MiB)
_powers: tuple[np.ndarray, np.ndarray] | None = None


def _power_tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``P**j`` and ``P**-j`` (mod 2^64) for ``j < size``."""
    global _powers
    if _powers is not None and len(_powers[0]) >= size:
        return _powers[0][:size], _powers[1][:size]
    length = max(size, min(_POWERS_KEPT, 1 << max(size - 1, 1).bit_length()))
    with np.errstate(over="ignore"):
        tables = tuple(
            np.cumprod(np.concatenate([[np.uint64(1)], np.full(length - 1, base)]))
            for base in (_P, _P_INVERSE)
        )
    if length <= _POWERS_KEPT:
        _powers = tables  # one assignment: threads see the old tables or the new ones
    return tables[0][:size], tables[1][:size]


def word_hashes(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash per normalised word, and each document's ``[start, end)`` word offsets.

    The words are those of :func:`words`, found in NumPy on the spaced text's bytes (Arrow's
    split into a list of strings cost more than the hashing).
    """
    text = spaced(texts)
    docs = len(text)
    raw, bounds = utf8_bytes(text)
    size = len(raw)
    if not size:
        return np.zeros(0, dtype=np.uint64), np.zeros(docs + 1, dtype=np.int64)
    in_word = ~_SEPARATOR[raw]
    starts, counts = word_starts(in_word, bounds)
    # A word ends at a word byte before a separator or at a document's last byte.
    closes = in_word.copy()
    closes[:-1] &= ~in_word[1:]
    lasts = bounds[1:][bounds[1:] > 0] - 1
    closes[lasts] = in_word[lasts]
    ends = np.flatnonzero(closes) + 1
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # Polynomial hash: byte j of a word weighs P^(j - word start), sums wrap mod 2^64. From
    # one running sum of byte * P^j over the text: (sum to end - sum to start) * P^-start.
    powers, inverses = _power_tables(size)
    running = raw.astype(np.uint64)
    with np.errstate(over="ignore"):
        np.multiply(running, powers, out=running)
        np.cumsum(running, out=running)
        before = np.where(starts > 0, running[starts - 1], np.uint64(0))
        sums = (running[ends - 1] - before) * inverses[starts]
        lengths = (ends - starts).astype(np.uint64)
        return fmix64(sums ^ (lengths * _MIX[63])), offsets


def shingle_hashes(texts: pa.Array | pa.ChunkedArray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every word n-gram of every document, and per-document offsets.

    A document shorter than ``n`` words has one shingle (all its words); an empty one none.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    parts, counts = [], []
    for start, stop in _slices(texts, _SLICE_BYTES):
        hashes, offsets = word_hashes(texts.slice(start, stop - start))
        shingles, per_doc = _ngrams(hashes, offsets, n)
        parts.append(shingles)
        counts.append(per_doc)
    counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)), offsets


def _slices(texts: pa.Array, budget: int) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of about ``budget`` text bytes each (at least one row)."""
    sizes = pc.fill_null(pc.binary_length(texts), 0).to_numpy(zero_copy_only=False)
    ends = np.cumsum(sizes, dtype=np.int64)
    bounds, start = [], 0
    while start < len(texts):
        base = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, base + budget, side="right"))
        stop = max(stop, start + 1)
        bounds.append((start, stop))
        start = stop
    return bounds


def _ngrams(hashes: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.diff(offsets)
    total = len(hashes)
    with np.errstate(over="ignore"):
        acc = np.zeros(total, dtype=np.uint64)
        for k in range(min(n, total)):
            acc[: total - k] += hashes[k:] * _MIX[k]
        # A short document's single shingle: the sum over the words it has.
        short = np.flatnonzero((lengths > 0) & (lengths < n))
        for doc in short:
            first, count = offsets[doc], lengths[doc]
            acc[first] = (hashes[first : first + count] * _MIX[:count]).sum()
    per_doc = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    starts = np.repeat(offsets[:-1], per_doc) + (
        np.arange(per_doc.sum()) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
    )
    return fmix64(acc[starts] ^ np.uint64(n)), per_doc.astype(np.int64)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters ``(a, b)`` for these settings.

    Drawn the way ``datasketch.MinHash(scheme="affine32")`` draws them (a test checks they
    are equal), so workers need not import datasketch and, with it, scipy.
    """
    generator = np.random.RandomState(seed)
    a = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def signatures(
    shingles: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """MinHash signatures (documents x permutations, uint32) from 64-bit shingle hashes.

    Equal to ``datasketch.MinHash(num_perm, seed, scheme="affine32")`` updated with the
    shingles' upper 32 bits; a document without shingles keeps the all-max signature.
    """
    docs = len(offsets) - 1
    result = np.full((docs, len(a)), np.iinfo(np.uint32).max, dtype=np.uint32)
    counts = np.diff(offsets)
    nonempty = np.flatnonzero(counts)
    if not len(nonempty):
        return result
    values = fmix32((shingles >> np.uint64(32)).astype(np.uint32))
    starts = offsets[nonempty]
    permuted = np.empty_like(values)
    # One permutation at a time into one reused buffer: a (shingles x permutations) matrix
    # would be memory-bound and ten times slower.
    with np.errstate(over="ignore"):
        for index in range(len(a)):
            np.multiply(values, a[index], out=permuted)
            np.add(permuted, b[index], out=permuted)
            result[nonempty, index] = np.minimum.reduceat(permuted, starts)
    return result


def band_hashes(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit hash per band per document (documents x bands)."""
    out = np.empty((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            block = sigs[:, band * rows : (band + 1) * rows].astype(np.uint64)
            out[:, band] = fmix64((block * _MIX[:rows]).sum(axis=1) ^ np.uint64(band))
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """True Jaccard similarity of two shingle-hash sets."""
    a, b = np.unique(a), np.unique(b)
    union = len(np.union1d(a, b))
    return len(np.intersect1d(a, b, assume_unique=True)) / union if union else 1.0
