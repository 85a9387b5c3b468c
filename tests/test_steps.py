"""Document steps and exact dedup, on small tables with expected outputs."""

from __future__ import annotations

import random

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pmc_data.dedup.exact import ExactDedup, ExactDedupArgs
from pmc_data.steps.filters import LengthFilter, LengthFilterArgs
from pmc_data.steps.text import NormalizeText, NormalizeTextArgs


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Cafe\u0301 au\u00a0lait", "Café au lait"),  # NFC, no-break space
        ("soft\u00adhyphen and zero\u200bwidth\ufeff", "softhyphen and zerowidth"),
        ("line one   \r\nline two\r\n\n\n\n\nline three  ", "line one\nline two\n\nline three"),
        ("  indented\tand\t\ttabbed  ", "indented and tabbed"),
        ("10\u2079 cells per m\u00b2", "10\u2079 cells per m\u00b2"),  # NFC keeps superscripts
        ("bell\x07 and nul\x00", "bell and nul"),
    ],
)
def test_normalize_text(raw, expected):
    assert NormalizeText().transform(raw) == expected


@pytest.mark.parametrize("form", ["NFC", "NFKC", "none"])
@pytest.mark.parametrize("blank", [0, 1, 3])
def test_vectorised_rules_equal_the_python_rules(form, blank):
    alphabet = [
        *"ab  \t\n\r.",
        "\u00a0",
        "\u2009",
        "\u3000",
        "\u200b",
        "\ufeff",
        "\u00ad",
        "\x07",
        "\x85",
        "\u2028",
        "e\u0301",
        "\u00e9",
        "\ufb01",
        "\u00b2",
        "\r\n",
        "\n\n\n",
    ]
    rng = random.Random(f"{form}{blank}")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    step = NormalizeText(NormalizeTextArgs(form=form, max_blank_lines=blank))
    vectorised = step.apply(pa.table({"text": texts})).kept.column("text").to_pylist()
    assert vectorised == [step.transform(t) for t in texts]


def test_normalize_text_options():
    nfkc = NormalizeText(NormalizeTextArgs(form="NFKC"))
    assert nfkc.transform("m\u00b2 \ufb01le") == "m2 file"
    keep_blank = NormalizeText(NormalizeTextArgs(max_blank_lines=2))
    assert keep_blank.transform("a\n\n\n\n\nb") == "a\n\n\nb"


def test_normalize_applies_to_instruction_columns():
    step = NormalizeText(schema="medc_i")
    batch = pa.table({"instruction": ["Q\u00a0 one"], "input": [None], "output": ["A  b"]})
    out = step.apply(batch).kept.to_pylist()
    assert out == [{"instruction": "Q one", "input": None, "output": "A b"}]


def test_length_filter_reasons_and_accounting():
    batch = pa.table({"text": ["one two three four", "one", "a " * 50, None], "id": list("abcd")})
    step = LengthFilter(LengthFilterArgs(min_words=2, max_words=10))
    out = step.apply(batch)
    assert out.kept.column("id").to_pylist() == ["a"]
    assert out.dropped.table.column("id").to_pylist() == ["b", "c", "d"]
    assert out.dropped.reasons == ["too_short", "too_long", "too_short"]
    chars = LengthFilter(LengthFilterArgs(min_chars=5)).apply(batch)
    assert chars.kept.column("id").to_pylist() == ["a", "c"]


def dedup_frame(rows: list[dict], step: ExactDedup) -> pl.DataFrame:
    table = pa.Table.from_pylist(rows)
    signatures = pl.from_arrow(step.signatures(table))
    return signatures.with_columns(_order=pl.int_range(pl.len(), dtype=pl.Int64))


def test_exact_dedup_groups_normalised_text_and_picks_survivor():
    step = ExactDedup(ExactDedupArgs(license_priority=["CC0-1.0", "CC-BY-4.0"]))
    rows = [
        {"id": "b", "text": "Same  text.", "license": "CC-BY-4.0", "source": "pmc"},
        {"id": "a", "text": "same text.", "license": "CC-BY-4.0", "source": "pmc"},
        {"id": "z", "text": "SAME TEXT.", "license": "CC0-1.0", "source": "pmc"},
        {"id": "c", "text": "Different text.", "license": "CC-BY-4.0", "source": "pmc"},
        {"id": "d", "text": "same text!", "license": "CC-BY-4.0", "source": "pmc"},
    ]
    decided = step.decide(dedup_frame(rows, step))
    assert decided["_order"].to_list() == [0, 1]
    assert decided["reason"].to_list() == ["exact_duplicate"] * 2
    assert decided["detail"].to_list() == ['{"kept_id":"z"}'] * 2
    loose = ExactDedup(ExactDedupArgs(ignore_punctuation=True))
    decided = loose.decide(dedup_frame(rows, loose))
    # Without a license preference the longer text ("Same  text.") survives; "!" no longer
    # matters, so four rows form one group.
    assert sorted(decided["_order"].to_list()) == [1, 2, 4]
    assert set(decided["detail"].to_list()) == {'{"kept_id":"b"}'}


def test_exact_dedup_prefers_source_then_longer_text():
    step = ExactDedup(ExactDedupArgs(source_priority=["books", "pmc"]))
    rows = [
        {"id": "1", "text": "Text", "license": "x", "source": "general"},
        {"id": "2", "text": "text", "license": "x", "source": "pmc"},
        {"id": "3", "text": "text ", "license": "x", "source": "pmc"},
    ]
    decided = step.decide(dedup_frame(rows, step))
    assert decided["detail"].to_list() == ['{"kept_id":"3"}'] * 2


def test_word_counts_equal_the_regex_count():
    """The length filter counts words in NumPy; the same as RE2's ``\\S+`` runs (whose
    ``\\s`` is tab, line feed, form feed, carriage return and space only), on plain, sliced
    and chunked columns with nulls, empty strings and every kind of blank."""
    from pmc_data.steps.filters import word_counts

    pieces = ["a", "é", "中", " ", "  ", "\t", "\n", "\x0b", "\x0c", "\r", "\xa0", "\u2009", "😀"]
    rng = random.Random(2)

    def regex(array):
        return pc.count_substring_regex(pc.fill_null(array, ""), r"\S+").to_numpy(
            zero_copy_only=False
        )

    for _ in range(300):
        texts = [
            None if rng.random() < 0.1 else "".join(rng.choices(pieces, k=rng.randint(0, 30)))
            for _ in range(rng.randint(0, 12))
        ]
        array = pa.array(texts, pa.string())
        columns = [array, array.slice(1, max(0, len(array) - 2))]
        columns.append(pa.chunked_array([array.slice(0, 2), array.slice(2)], pa.string()))
        for column in columns:
            assert word_counts(column).tolist() == regex(column).tolist(), texts
