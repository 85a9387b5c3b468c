"""De-duplication against another dataset: drop new documents an earlier release has.

For incremental releases: the reference is a recipe input holding a built or published
pmc-data folder (its ``data/``), or any JSONL / Parquet / dataset folder with ``id`` and
``text``. Its documents are MinHashed with the same settings as the new ones; a new document
whose estimated Jaccard with a reference document reaches the threshold is dropped as
``in_reference``, naming the matched id.

    inputs:
      previous: {help: the last published version, required: false}
    steps:
      - step: dedup_against
        reference: previous
        threshold: 0.8
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pmc_data.dedup.minhash import MinHashArgs, NearDedup, signature_matrix
from pmc_data.registry import DECISION_SCHEMA, decisions, reader_class, register_step
from pmc_data.sources.documents import DocumentArgs


class DedupAgainstArgs(MinHashArgs):
    #: The recipe input holding the reference dataset.
    reference: str


@register_step
class DedupAgainst(NearDedup):
    """Drops documents that near-duplicate a document of a reference dataset."""

    name = "dedup_against"
    Args = DedupAgainstArgs
    input_args = ("reference",)

    def reference_signatures(self) -> pl.DataFrame:
        """Signatures of every reference document (read unit by unit, in this process)."""
        path = self.inputs.get(self.args.reference)
        if path is None:
            return pl.DataFrame()
        documents = reader_class("documents")
        reader = documents(
            DocumentArgs(id_prefix="", source_field="source", license_field="license"),
            self.schema,
            self.args.reference,
        )
        frames = []
        for unit in reader.plan(path, 16 << 20):
            table = reader.read(unit).table
            if len(table):
                frames.append(pl.from_arrow(self.signatures(table)))
        return pl.concat(frames) if frames else pl.DataFrame()

    def decide(self, signatures: pl.LazyFrame) -> pl.DataFrame:
        reference = self.reference_signatures()
        self._report = {
            "reference_documents": len(reference),
            "threshold": self.args.threshold,
            "bands": self.bands,
            "rows": self.rows,
            "matched": 0,
        }
        new = signatures.lazy().filter(pl.col("shingles") > 0).collect()
        if not len(reference) or not len(new):
            return pl.DataFrame(schema=DECISION_SCHEMA)
        band_columns = [f"band_{i}" for i in range(self.bands)]
        old = reference.filter(pl.col("shingles") > 0).with_row_index("_ref")
        long_new = new.unpivot(
            index="_order", on=band_columns, variable_name="band", value_name="hash"
        )
        long_old = old.unpivot(
            index="_ref", on=band_columns, variable_name="band", value_name="hash"
        )
        pairs = long_new.join(long_old, on=["band", "hash"]).select("_order", "_ref").unique()
        if not len(pairs):
            return pl.DataFrame(schema=DECISION_SCHEMA)
        new_sigs = signature_matrix(new.sort("_order")["signature"], self.args.num_perm)
        old_sigs = signature_matrix(old["signature"], self.args.num_perm)
        rows = np.searchsorted(new.sort("_order")["_order"].to_numpy(), pairs["_order"].to_numpy())
        refs = pairs["_ref"].to_numpy().astype(np.int64)
        estimate = (new_sigs[rows] == old_sigs[refs]).mean(axis=1)
        matched = (
            pairs.with_columns(
                jaccard_estimate=pl.Series(estimate).round(4),
                matched_id=pl.Series(old["id"].to_numpy()[refs]),
            )
            .filter(pl.col("jaccard_estimate") >= self.args.threshold)
            # The closest reference document names the match (ties: the smaller id).
            .sort(["_order", "jaccard_estimate", "matched_id"], descending=[False, True, False])
            .unique("_order", keep="first", maintain_order=True)
            .join(new.select("_order", "id", "source"), on="_order")
        )
        self._report["matched"] = len(matched)
        self._report["removed_per_source"] = dict(
            sorted(matched["source"].value_counts().iter_rows())
        )
        self._clusters = matched.select("id", "source", "matched_id", "jaccard_estimate")
        details = [
            {"matched_id": m, "jaccard_estimate": e}
            for m, e in matched.select("matched_id", "jaccard_estimate").iter_rows()
        ]
        return decisions(matched["_order"], "in_reference", details)

    def tables(self) -> dict[str, pl.DataFrame]:
        return {"matches": self._clusters} if len(self._clusters) else {}
