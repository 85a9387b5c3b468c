"""Near-duplicate removal with MinHash LSH, in two phases that scale with signatures.

Phase one runs in the worker pool: each document's word n-gram shingles (5 by default, on
lower-cased text with punctuation split off), its MinHash signature and its LSH band hashes
(:mod:`pmc_data.dedup.shingles`) go into a signature table next to the unit. Phase two is
polars over that table: documents sharing a band hash are candidate pairs; a pair is kept
when the signatures' estimated Jaccard (and, with ``verify: true``, the true Jaccard of the
shingle sets) reaches the threshold; connected components of the kept pairs are clusters;
each cluster keeps one survivor by the survivor policy and drops the rest as
``near_duplicate``, each reject naming its ``cluster_id``, ``kept_id`` and Jaccard.

    steps:
      - step: near_dedup
        threshold: 0.8         # Jaccard of word 5-gram sets
        ngram: 5
        num_perm: 112          # bands x rows from datasketch's optimal parameters...
        bands: null            # ...unless given
        verify: false          # true: drop LSH false positives by true Jaccard
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from pmc_data.dedup.exact import ExactDedupArgs, survivor_order
from pmc_data.dedup.shingles import band_hashes, jaccard, permutations, shingle_hashes, signatures
from pmc_data.registry import DECISION_SCHEMA, GlobalStep, StepArgs, decisions, register_step

#: Band groups up to this size give every pair in them; larger groups (boilerplate shared by
#: thousands of documents) give a chain in input order, which keeps them connected without
#: a quadratic number of pairs.
MAX_GROUP_PAIRS = 64


class MinHashArgs(StepArgs):
    """MinHash and LSH settings, shared by every MinHash step."""

    threshold: float = Field(0.8, gt=0.0, le=1.0)
    ngram: int = Field(5, ge=1, le=32)
    num_perm: int = Field(112, ge=8, le=1024)
    #: LSH bands and rows per band; both ``null`` derives them from the threshold with
    #: datasketch's optimal-parameter method (equal weight to false positives and negatives).
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    seed: int = 1

    @model_validator(mode="before")
    @classmethod
    def _optimal_bands(cls, data: object) -> object:
        """Fill in bands and rows when neither is given, so the resolved recipe (and the
        manifest) states them, and workers need not import datasketch (and scipy) again."""
        if isinstance(data, dict) and data.get("bands") is None and data.get("rows") is None:
            from datasketch.lsh import _optimal_param

            fields = cls.model_fields
            threshold = data.get("threshold", fields["threshold"].default)
            num_perm = data.get("num_perm", fields["num_perm"].default)
            try:
                bands, rows = _optimal_param(float(threshold), int(num_perm), 0.5, 0.5)
            except (TypeError, ValueError):
                return data  # the field validators will say what is wrong
            data = data | {"bands": int(bands), "rows": int(rows)}
        return data

    @model_validator(mode="after")
    def _lsh(self) -> MinHashArgs:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("give both bands and rows, or neither")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows = {self.bands * self.rows} exceeds num_perm")
        return self


class NearDedupArgs(MinHashArgs, ExactDedupArgs):
    #: Check candidate pairs by the true Jaccard of their shingle sets (stores the shingles).
    verify: bool = False


def lsh_parameters(args: MinHashArgs) -> tuple[int, int]:
    """Bands and rows per band (filled in from the threshold when the recipe gave neither)."""
    return args.bands, args.rows


def connected_components(a: np.ndarray, b: np.ndarray) -> pl.DataFrame:
    """Components of the graph with edges ``a[i] - b[i]``: columns ``node``, ``component``
    (the smallest node of its component), by min-label propagation with pointer jumping."""
    edges = pl.DataFrame({"src": np.concatenate([a, b]), "dst": np.concatenate([b, a])})
    labels = edges.select(pl.col("src").unique().alias("node")).with_columns(
        component=pl.col("node")
    )
    while True:
        neighbour = (
            edges.join(labels, left_on="dst", right_on="node")
            .group_by("src")
            .agg(pl.col("component").min().alias("seen"))
        )
        updated = labels.join(neighbour, left_on="node", right_on="src", how="left").select(
            "node", component=pl.min_horizontal("component", "seen")
        )
        # Pointer jumping: take the label of your label, halving chain lengths each round.
        updated = updated.join(
            updated.rename({"node": "component", "component": "jump"}), on="component"
        ).select("node", component=pl.min_horizontal("component", "jump"))
        changed = updated.join(labels, on="node").filter(
            pl.col("component") != pl.col("component_right")
        )
        labels = updated
        if changed.is_empty():
            return labels.sort("node")


def candidate_pairs(bands: pl.DataFrame, band_count: int) -> pl.DataFrame:
    """Pairs ``(a, b)``, ``a < b``, of documents sharing at least one band hash.

    One band at a time, so the working set is one band's column, not all of them.
    """
    parts = []
    for band in range(band_count):
        column = f"band_{band}"
        grouped = (
            bands.select("_order", column)
            .with_columns(size=pl.len().over(column))
            .filter(pl.col("size") > 1)
        )
        small = grouped.filter(pl.col("size") <= MAX_GROUP_PAIRS)
        parts.append(
            small.join(small, on=column, suffix="_b")
            .filter(pl.col("_order") < pl.col("_order_b"))
            .select(a="_order", b="_order_b")
        )
        big = grouped.filter(pl.col("size") > MAX_GROUP_PAIRS).sort(column, "_order")
        chain = big.with_columns(b=pl.col("_order").shift(-1).over(column)).drop_nulls("b")
        parts.append(chain.select(a="_order", b=pl.col("b").cast(pl.Int64)))
    return pl.concat(parts).unique().sort("a", "b")


def signature_matrix(column: pl.Series, width: int) -> np.ndarray:
    """A binary column of ``width`` little-endian uint32 values per row as a (rows x width)
    uint32 matrix: one copy of the signatures (going through Arrow took three)."""
    if not len(column):
        return np.zeros((0, width), dtype=np.uint32)
    matrix = column.bin.reinterpret(dtype=pl.Array(pl.UInt32, width), endianness="little")
    return matrix.to_numpy()


@register_step
class NearDedup(GlobalStep):
    """MinHash LSH near-duplicate removal (see the module docstring)."""

    name = "near_dedup"
    Args = NearDedupArgs
    threads = True  # Arrow lower-cases and spaces the text, NumPy finds and hashes the words

    def __init__(self, args: MinHashArgs | None = None, schema: str = "medc_k") -> None:
        super().__init__(args, schema)
        self.bands, self.rows = lsh_parameters(self.args)
        self.a, self.b = permutations(self.args.num_perm, self.args.seed)
        self._report: dict = {}
        self._clusters = pl.DataFrame()

    def signatures(self, batch: pa.Table) -> pa.Table:
        shingles, offsets = shingle_hashes(self.content(batch), self.args.ngram)
        sigs = signatures(shingles, offsets, self.a, self.b)
        bands = band_hashes(sigs, self.bands, self.rows)
        width = self.args.num_perm * 4
        columns = {
            "id": batch.column("id"),
            "license": batch.column("license"),
            "source": batch.column("source"),
            "length": pc.utf8_length(self.content(batch)),
            "shingles": pa.array(np.diff(offsets), pa.int64()),
            "signature": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), len(sigs), [None, pa.py_buffer(sigs.tobytes())]
            ),
        }
        for band in range(self.bands):
            columns[f"band_{band}"] = pa.array(bands[:, band], pa.uint64())
        if getattr(self.args, "verify", False):
            sets = [
                np.unique(shingles[offsets[i] : offsets[i + 1]]).tobytes()
                for i in range(len(offsets) - 1)
            ]
            columns["shingle_set"] = pa.array(sets, pa.large_binary())
        return pa.table(columns)

    def decide(self, signatures: pl.LazyFrame) -> pl.DataFrame:
        args = self.args
        signatures = signatures.lazy()
        band_columns = [f"band_{i}" for i in range(self.bands)]
        # The band hashes of every document first; the signatures and survivor fields only
        # of the documents in some candidate pair, read after: the build's largest table is
        # never whole in memory.
        docs = signatures.select("_order", "shingles", *band_columns).collect()
        documents = len(docs)
        if (docs["shingles"] == 0).any():
            docs = docs.filter(pl.col("shingles") > 0)
        with_shingles = len(docs)
        if not docs["_order"].is_sorted():
            docs = docs.sort("_order")
        pairs = candidate_pairs(docs.drop("shingles"), self.bands)
        del docs
        # ``nodes`` are the candidates' orders, sorted; ``candidates`` their rows, in order.
        nodes = np.unique(np.concatenate([pairs["a"].to_numpy(), pairs["b"].to_numpy()]))
        fields = ["_order", "signature", "id", "license", "source", "length"]
        candidates = (
            signatures.filter(pl.col("_order").is_in(pl.Series(nodes).implode()))
            .select(fields + (["shingle_set"] if args.verify else []))
            .collect()
        )
        if not candidates["_order"].is_sorted():
            candidates = candidates.sort("_order")
        sigs = signature_matrix(candidates["signature"], args.num_perm)
        ia, ib = (
            np.searchsorted(nodes, pairs["a"].to_numpy()),
            np.searchsorted(nodes, pairs["b"].to_numpy()),
        )
        estimate = (sigs[ia] == sigs[ib]).mean(axis=1) if len(pairs) else np.zeros(0)
        keep = estimate >= args.threshold
        true = None
        # The candidate documents' shingle sets, read once for both Jaccard checks below.
        sets = candidates["shingle_set"].to_list() if args.verify and keep.any() else []
        if sets:
            true = np.zeros(len(pairs))
            for i in np.flatnonzero(keep):
                true[i] = jaccard(
                    np.frombuffer(sets[ia[i]], np.uint64), np.frombuffer(sets[ib[i]], np.uint64)
                )
            keep &= true >= args.threshold
        self._report = {
            "threshold": args.threshold,
            "ngram": args.ngram,
            "num_perm": args.num_perm,
            "bands": self.bands,
            "rows": self.rows,
            "verify": args.verify,
            "documents": documents,
            "documents_without_shingles": documents - with_shingles,
            "candidate_pairs": len(pairs),
            "pairs_above_estimate": int((estimate >= args.threshold).sum()),
            "pairs_kept": int(keep.sum()),
        }
        if not keep.any():
            self._report |= {"clusters": 0, "cluster_sizes": {}, "removed_per_source": {}}
            return pl.DataFrame(schema=DECISION_SCHEMA)
        components = connected_components(pairs["a"].to_numpy()[keep], pairs["b"].to_numpy()[keep])
        members = survivor_order(
            candidates.select("_order", "id", "license", "source", "length").join(
                components, left_on="_order", right_on="node"
            ),
            args,
        )
        # Cluster ids count clusters in input order: the same whatever the units were.
        ranks = components.select(pl.col("component").unique().sort()).with_row_index("cluster_id")
        members = members.join(ranks, on="component").with_columns(
            kept_order=pl.col("_order").first().over("component"),
            kept_id=pl.col("id").first().over("component"),
        )
        member_rows = np.searchsorted(nodes, members["_order"].to_numpy())
        kept_rows = np.searchsorted(nodes, members["kept_order"].to_numpy())
        members = members.with_columns(
            jaccard_estimate=pl.Series((sigs[member_rows] == sigs[kept_rows]).mean(axis=1)).round(
                4
            ),
            kept=pl.col("_order") == pl.col("kept_order"),
        )
        if args.verify:
            exact = [
                jaccard(np.frombuffer(sets[m], np.uint64), np.frombuffer(sets[k], np.uint64))
                for m, k in zip(member_rows, kept_rows, strict=True)
            ]
            members = members.with_columns(jaccard=pl.Series(exact).round(4))
        else:
            members = members.with_columns(jaccard=pl.lit(None, pl.Float64))
        members = members.sort("cluster_id", "_order")
        self._clusters = members.select(
            "cluster_id",
            "id",
            "source",
            "license",
            "kept",
            "kept_id",
            "jaccard_estimate",
            "jaccard",
        )
        removed = members.filter(~pl.col("kept"))
        sizes = members.group_by("cluster_id").len()["len"].value_counts().sort("len")
        self._report |= {
            "clusters": int(members["cluster_id"].n_unique()),
            "cluster_sizes": {str(r["len"]): r["count"] for r in sizes.iter_rows(named=True)},
            "removed_per_source": dict(sorted(removed["source"].value_counts().iter_rows())),
        }
        details = [
            {"cluster_id": c, "kept_id": k, "jaccard_estimate": e, "jaccard": j}
            for c, k, e, j in removed.select(
                "cluster_id", "kept_id", "jaccard_estimate", "jaccard"
            ).iter_rows()
        ]
        return decisions(removed["_order"], "near_duplicate", details)

    def report(self) -> dict:
        return self._report

    def tables(self) -> dict[str, pl.DataFrame]:
        return {"clusters": self._clusters} if len(self._clusters) else {}
