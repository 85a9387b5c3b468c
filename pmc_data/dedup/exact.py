"""Exact de-duplication by a hash of normalised text, with a deterministic survivor.

Signatures (16-byte BLAKE2b of the lower-cased, whitespace-collapsed text) are computed per
shard in the worker pool; the decision is one polars sort over the signature table, so memory
follows the number of documents, not their text.

The survivor of each group is chosen by, in order: the license's place in
``license_priority``, the source's place in ``source_priority`` (listed values first, in list
order), the longer text, the smaller id, and the earlier position in the input.
"""

from __future__ import annotations

import hashlib

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pmc_data.registry import GlobalStep, StepArgs, decisions, register_step

_PUNCTUATION = r"[^\p{L}\p{N}\s]"
_WHITESPACE_RUN = r"\s\s+|[^\S ]"


class ExactDedupArgs(StepArgs):
    #: Compare lower-cased text (``The`` equals ``the``).
    casefold: bool = True
    #: Ignore punctuation when comparing.
    ignore_punctuation: bool = False
    license_priority: list[str] = []
    source_priority: list[str] = []


def rank_expr(column: str, priority: list[str]) -> pl.Expr:
    """Position of a value in a priority list; values not listed rank after all listed ones."""
    if not priority:
        return pl.lit(0, pl.Int32)
    ranks = pl.DataFrame({column: priority, "rank": list(range(len(priority)))})
    return pl.col(column).replace_strict(
        ranks[column], ranks["rank"], default=len(priority), return_dtype=pl.Int32
    )


def survivor_order(frame: pl.DataFrame, args: ExactDedupArgs) -> pl.DataFrame:
    """Rows sorted so that the first of each group is the deterministic survivor."""
    return frame.with_columns(
        _license_rank=rank_expr("license", args.license_priority),
        _source_rank=rank_expr("source", args.source_priority),
    ).sort(
        ["_license_rank", "_source_rank", "length", "id", "_order"],
        descending=[False, False, True, False, False],
    )


@register_step
class ExactDedup(GlobalStep):
    """Keeps one row per normalised text; the others are dropped as ``exact_duplicate``."""

    name = "exact_dedup"
    Args = ExactDedupArgs
    # Arrow normalises; hashlib releases the GIL while hashing texts longer than 2 KiB.
    threads = True

    def normalise(self, texts: pa.Array) -> pa.Array:
        """The compared form of each text, vectorised in Arrow."""
        if self.args.casefold:
            texts = pc.utf8_lower(texts)
        if self.args.ignore_punctuation:
            texts = pc.replace_substring_regex(texts, _PUNCTUATION, "")
        # Every whitespace run as one space. Written as "two or more, or one that is not a
        # space": the plain "\s+" makes RE2 rewrite every single space (six times slower).
        return pc.utf8_trim_whitespace(pc.replace_substring_regex(texts, _WHITESPACE_RUN, " "))

    def signatures(self, batch: pa.Table) -> pa.Table:
        content = self.content(batch)
        digests = [
            hashlib.blake2b(text.encode(), digest_size=16).digest()
            for text in self.normalise(content).to_pylist()
        ]
        return pa.table(
            {
                "hash": pa.array(digests, pa.binary(16)),
                "id": batch.column("id"),
                "license": batch.column("license"),
                "source": batch.column("source"),
                "length": pc.utf8_length(content),
            }
        )

    def decide(self, signatures: pl.LazyFrame) -> pl.DataFrame:
        # Only texts that occur more than once need a survivor: sorting those few, not the
        # whole corpus, keeps time and memory to the duplicates.
        repeated = signatures.lazy().filter(pl.col("hash").is_duplicated()).collect()
        ordered = survivor_order(repeated, self.args)
        ranked = ordered.with_columns(
            kept_id=pl.col("id").first().over("hash"),
            _rank=pl.int_range(pl.len()).over("hash"),
        )
        dropped = ranked.filter(pl.col("_rank") > 0)
        details = [{"kept_id": k} for k in dropped["kept_id"].to_list()]
        return decisions(dropped["_order"], "exact_duplicate", details)
