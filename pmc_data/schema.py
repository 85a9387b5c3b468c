"""Row schemas of the published datasets, as Arrow schemas and matching ``datasets.Features``.

Every reader produces tables with one of these schemas, and every data file carries the
``datasets`` features in its Arrow metadata, so ``load_dataset(DIR)`` returns exactly these
types:

>>> from pmc_data.schema import schema_for
>>> schema_for("medc_k").names
['id', 'text', 'source', 'license', 'metadata']
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pyarrow as pa

#: Per-document metadata of MedC-K rows. Papers fill the bibliographic fields, books the
#: book fields; every row names the input file and member (line, archive member, page range)
#: it came from.
MEDC_K_METADATA = pa.struct(
    [
        ("title", pa.string()),
        ("pmcid", pa.string()),
        ("pmid", pa.string()),
        ("doi", pa.string()),
        ("journal", pa.string()),
        ("year", pa.int32()),
        ("sections", pa.list_(pa.string())),
        ("edition", pa.string()),
        ("pages", pa.string()),
        ("extraction", pa.string()),
        ("input_file", pa.string()),
        ("input_member", pa.string()),
    ]
)

#: MedC-K: knowledge-injection documents (papers, book chapters, general replay text).
MEDC_K = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("license", pa.string()),
        ("metadata", MEDC_K_METADATA),
    ]
)

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

#: Where an instruction row came from and how it was generated, enough to regenerate it.
MEDC_I_PROVENANCE = pa.struct(
    [
        ("source_item_id", pa.string()),
        ("generator_model", pa.string()),
        ("generator_revision", pa.string()),
        ("template_id", pa.string()),
        ("template_hash", pa.string()),
        ("temperature", pa.float64()),
        ("top_p", pa.float64()),
        ("max_new_tokens", pa.int32()),
        ("seed", pa.int64()),
        ("input_file", pa.string()),
        ("input_member", pa.string()),
    ]
)

#: MedC-I: instruction rows in Alpaca form plus the same exchange as chat ``messages``.
MEDC_I = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("task", pa.string()),
        ("instruction", pa.string()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("messages", pa.list_(MESSAGE)),
        ("license", pa.string()),
        ("provenance", MEDC_I_PROVENANCE),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {"medc_k": MEDC_K, "medc_i": MEDC_I}

#: The column whose text the document steps read and the card measures, per schema.
TEXT_COLUMN: dict[str, str] = {"medc_k": "text", "medc_i": "output"}


def schema_for(name: str) -> pa.Schema:
    """The Arrow schema of a dataset kind (``medc_k`` or ``medc_i``)."""
    try:
        return SCHEMAS[name]
    except KeyError:
        raise ValueError(f"unknown schema {name!r}; allowed: {', '.join(SCHEMAS)}") from None


def features_for(name: str):
    """The ``datasets.Features`` equal to :func:`schema_for` (imports ``datasets`` lazily)."""
    import datasets

    return datasets.Features.from_arrow_schema(schema_for(name))


#: What ``datasets`` makes of each schema, stored: importing ``datasets`` costs a build ~0.9 s
#: and ~75 MiB. ``python -m pmc_data.schema`` rewrites it; a test checks it is current.
FEATURES_FILE = Path(__file__).with_name("hf_features.json")


def derive_features(name: str) -> dict:
    """``datasets``' features of a schema: the dict Parquet metadata carries and the list a
    dataset card's ``dataset_info`` holds."""
    features = features_for(name)
    return {"features": features.to_dict(), "card": features._to_yaml_list()}


@functools.cache
def stored_features() -> dict[str, dict]:
    """:func:`derive_features` of every schema, read from :data:`FEATURES_FILE`."""
    return json.loads(FEATURES_FILE.read_text())


def with_hf_metadata(schema: pa.Schema) -> pa.Schema:
    """Attach the ``huggingface`` features metadata that ``datasets`` reads back from Parquet."""
    names = [name for name, known in SCHEMAS.items() if known.equals(schema)]
    if names:
        features = stored_features()[names[0]]["features"]
    else:
        import datasets

        features = datasets.Features.from_arrow_schema(schema).to_dict()
    info = {"info": {"features": features}}
    return schema.with_metadata({b"huggingface": json.dumps(info, sort_keys=True).encode()})


def empty_table(name: str) -> pa.Table:
    """A zero-row table of a dataset kind, for readers that produced nothing."""
    return schema_for(name).empty_table()


if __name__ == "__main__":
    derived = {name: derive_features(name) for name in SCHEMAS}
    FEATURES_FILE.write_text(json.dumps(derived, indent=1) + "\n")
    print(f"wrote {FEATURES_FILE}")
