"""Near-duplicate detection: hashing equals datasketch, known pairs, clusters, determinism."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from datasketch import MinHash

from pmc_data.dedup import shingles as shingles_module
from pmc_data.dedup.exact import ExactDedup, ExactDedupArgs
from pmc_data.dedup.minhash import NearDedup, NearDedupArgs, connected_components, lsh_parameters
from pmc_data.dedup.shingles import (
    fmix64,
    jaccard,
    permutations,
    shingle_hashes,
    signatures,
    word_hashes,
    words,
)
from pmc_data.recipe import load_recipe
from pmc_data.runner import BuildOptions, build
from tests.conftest import make_documents, sentence, write_jsonl


def test_exact_dedup_collapses_every_whitespace_run_like_the_plain_pattern():
    # The compared form must not change between versions (it decides which rows are
    # duplicates): the faster run pattern gives what "\s+" -> " " gave.
    texts = pa.array(
        ["A\tb", "a \n b", "a\n\n\nb", "  lead", "trail \t", "a\x0bb", "a\u00a0b", "a\fb",
         "a  b", "", "One. Two,  three!\r\nFour"]
    )  # fmt: skip
    for casefold, punctuation in [(False, False), (True, True)]:
        step = ExactDedup(ExactDedupArgs(casefold=casefold, ignore_punctuation=punctuation))
        expected = texts
        if casefold:
            expected = pc.utf8_lower(expected)
        if punctuation:
            expected = pc.replace_substring_regex(expected, r"[^\p{L}\p{N}\s]", "")
        expected = pc.utf8_trim_whitespace(pc.replace_substring_regex(expected, r"\s+", " "))
        assert step.normalise(texts).to_pylist() == expected.to_pylist()
    plain = ExactDedup(ExactDedupArgs(casefold=False, ignore_punctuation=False))
    assert plain.normalise(pa.array([" a \t\n b\r\n\fc "])).to_pylist() == ["a b c"]


def true_jaccard(a: str, b: str, n: int = 5) -> float:
    hashes, offsets = shingle_hashes(pa.array([a, b]), n)
    return jaccard(hashes[offsets[0] : offsets[1]], hashes[offsets[1] : offsets[2]])


def test_shingles_follow_the_normalised_words():
    hashes, offsets = shingle_hashes(
        pa.array(
            [
                "Beta-blockers (e.g. atenolol) LOWER pressure.",
                "beta blockers e g atenolol lower pressure",
                "",
                "two words",
                None,
            ]
        ),
        5,
    )
    assert offsets.tolist() == [0, 3, 6, 6, 7, 7]
    assert hashes[0:3].tolist() == hashes[3:6].tolist()


def test_word_hashes_equal_a_plain_python_hash_of_each_word(monkeypatch):
    # The hash decides which documents are duplicates: it must not change between versions.
    # Reference: Arrow's split into words, then sum(byte_j * P^j) mod 2^64 per word.
    texts = pa.array(
        ["Beta-blockers (e.g. atenolol)", "", None, "  lead\ttab\u00a0nbsp\vvt", "x",
         "Éclampsie: 10⁹ cells/m² — α-β", "trail  ", "!!!", "adjacent", "words", "a" * 70]
    )  # fmt: skip
    prime, mask = 0x100000001B3, 2**64 - 1
    expected, offsets = [], [0]
    for pieces in words(texts).to_pylist():
        for word in [w for w in pieces if w]:
            data = word.encode()
            h = sum(b * pow(prime, j, 2**64) for j, b in enumerate(data)) & mask
            length_mix = (len(data) * int(shingles_module._MIX[63])) & mask
            expected.append(h ^ length_mix)
        offsets.append(len(expected))
    want = fmix64(np.array(expected, dtype=np.uint64))
    hashes, got_offsets = word_hashes(texts)
    assert got_offsets.tolist() == offsets
    assert hashes.tolist() == want.tolist()
    # Cut into slices of a few bytes (every document its own slice): the same shingles.
    whole = shingle_hashes(texts, 3)
    monkeypatch.setattr(shingles_module, "_SLICE_BYTES", 8)
    sliced = shingle_hashes(texts, 3)
    assert whole[0].tolist() == sliced[0].tolist() and whole[1].tolist() == sliced[1].tolist()


def test_signatures_equal_datasketch():
    texts = [" ".join(sentence(random.Random(i)) for _ in range(6)) for i in range(20)]
    hashes, offsets = shingle_hashes(pa.array(texts), 5)
    a, b = permutations(64, 7)
    ours = signatures(hashes, offsets, a, b)
    for doc in range(len(texts)):
        reference = MinHash(num_perm=64, seed=7, hashfunc=lambda x: x, scheme="affine32")
        reference.update_batch(
            [int(h >> np.uint64(32)) for h in hashes[offsets[doc] : offsets[doc + 1]]]
        )
        assert (reference.hashvalues == ours[doc]).all()


def test_permutations_equal_datasketch():
    for num_perm, seed in ((112, 1), (64, 7), (256, 42)):
        expected = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        a, b = permutations(num_perm, seed)
        assert (a == expected[0]).all() and (b == expected[1]).all()


def test_lsh_parameters_from_datasketch_or_given():
    assert lsh_parameters(NearDedupArgs(threshold=0.8, num_perm=112)) == (9, 12)
    assert lsh_parameters(NearDedupArgs(bands=14, rows=8)) == (14, 8)
    with pytest.raises(ValueError, match="exceeds num_perm"):
        NearDedupArgs(bands=20, rows=8)


def test_connected_components():
    components = connected_components(np.array([5, 1, 2, 9, 7]), np.array([4, 2, 3, 8, 8]))
    assert dict(components.iter_rows()) == {1: 1, 2: 1, 3: 1, 4: 4, 5: 4, 7: 7, 8: 7, 9: 7}


# --- realistic edits ---------------------------------------------------------------------


def base_text(seed: int, sentences: int = 14) -> str:
    rng = random.Random(seed)
    return " ".join(sentence(rng) for _ in range(sentences))


def typos(text: str, rate: float, seed: int) -> str:
    rng = random.Random(seed)
    words = text.split()
    for i in rng.sample(range(len(words)), int(len(words) * rate)):
        words[i] = words[i][:-1] + "q" if len(words[i]) > 3 else words[i] + "q"
    return " ".join(words)


def reorder(text: str, seed: int) -> str:
    parts = text.split(". ")
    random.Random(seed).shuffle(parts)
    return ". ".join(parts)


def boilerplate(text: str) -> str:
    return (
        "Copyright 2021 the authors. Published under a Creative Commons license. "
        + text
        + " Received 3 May 2020; accepted 9 June 2020."
    )


def truncate(text: str, keep: float) -> str:
    words = text.split()
    return " ".join(words[: int(len(words) * keep)])


def rehyphenate(text: str, every: int) -> str:
    words = text.split()
    for i in range(0, len(words), every):
        if len(words[i]) > 6:
            words[i] = words[i][:3] + "- " + words[i][3:]
    return " ".join(words)


def test_known_pairs_at_several_jaccard_levels(tmp_path):
    """Edits at known Jaccard: kept apart below the threshold, merged well above it."""
    cases = []
    for seed in range(30):
        original = base_text(seed)
        for edit, variant in (
            ("typo-light", typos(original, 0.01, seed)),
            ("reorder", reorder(original, seed)),
            ("boilerplate", boilerplate(original)),
            ("truncate-90", truncate(original, 0.9)),
            ("rehyphenate", rehyphenate(original, 40)),
            ("typo-heavy", typos(original, 0.15, seed)),
            ("truncate-40", truncate(original, 0.4)),
        ):
            cases.append((seed, edit, original, variant, true_jaccard(original, variant)))
    rows = []
    for seed, edit, original, variant, _ in cases:
        if edit == "typo-light":
            rows.append({"id": f"o{seed:02d}", "text": original})
        rows.append({"id": f"o{seed:02d}-{edit}", "text": variant})
    path = write_jsonl(tmp_path / "docs.jsonl", rows)
    recipe = load_recipe(
        "dedup",
        inputs={"docs": str(path)},
        require_inputs=True,
        overrides=["steps.near_dedup.verify=true"],
    )
    result = build(recipe, tmp_path / "out", BuildOptions(progress=False))
    removed = {
        r["id"]: json.loads(r["detail"])
        for r in pq.read_table(tmp_path / "out" / "rejects" / "near_dedup.parquet").to_pylist()
    }
    high = [c for c in cases if c[4] >= 0.9]
    low = [c for c in cases if c[4] < 0.7]
    assert len(high) >= 60 and len(low) >= 40
    for seed, edit, _, _, similarity in high:
        assert f"o{seed:02d}-{edit}" in removed or f"o{seed:02d}" in removed, (edit, similarity)
    for seed, edit, _, _, similarity in low:
        assert f"o{seed:02d}-{edit}" not in removed, (edit, similarity)
    # Verified pairs are >= 0.8; a member joined through another member (clusters are
    # connected components) can be further from the survivor, never far.
    assert all(d["jaccard"] >= 0.6 for d in removed.values())
    assert sum(d["jaccard"] >= 0.8 for d in removed.values()) >= 0.9 * len(removed)
    assert result.manifest["global_steps"]["near_dedup"]["verify"] is True


def test_exact_expected_clusters_and_survivors(tmp_path):
    a, b, c = base_text(1), base_text(2), base_text(3)
    rows = [
        {"id": "a2", "text": boilerplate(a), "license": "CC-BY-4.0", "source": "pmc"},
        {"id": "b1", "text": b, "license": "CC-BY-4.0", "source": "pmc"},
        {"id": "a1", "text": a, "license": "CC0-1.0", "source": "pmc"},
        {"id": "c1", "text": c, "license": "CC-BY-4.0", "source": "pmc"},
        {"id": "b2", "text": truncate(b, 0.97), "license": "CC-BY-4.0", "source": "books"},
        {"id": "a3", "text": typos(a, 0.005, 1), "license": "CC-BY-4.0", "source": "pmc"},
    ]
    path = write_jsonl(tmp_path / "docs.jsonl", rows)
    recipe = load_recipe(
        "dedup",
        inputs={"docs": str(path)},
        require_inputs=True,
        overrides=[
            "steps.near_dedup.license_priority=[CC0-1.0]",
            "steps.near_dedup.source_priority=[books]",
        ],
    )
    build(recipe, tmp_path / "out", BuildOptions(progress=False))
    clusters = pl.read_parquet(tmp_path / "out" / "report" / "near_dedup-clusters.parquet")
    assert clusters.select("cluster_id", "id", "kept", "kept_id").rows() == [
        (0, "a2", False, "a1"),
        (0, "a1", True, "a1"),
        (0, "a3", False, "a1"),
        (1, "b1", False, "b2"),
        (1, "b2", True, "b2"),
    ]
    kept = pq.read_table(tmp_path / "out" / "data").column("id").to_pylist()
    assert kept == ["a1", "c1", "b2"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Cluster sizes: 2: 1; 3: 1." in card
    assert "Removed per source: pmc: 3." in card


def test_same_removals_with_one_or_two_workers(tmp_path):
    """Also into a folder whose name a glob or a hive-partition reader would misread: the
    global steps scan every unit's signature file by its literal path."""
    docs = make_documents(1500, seed=21)
    rng = random.Random(3)
    for i in range(0, 1500, 7):
        docs.append(
            {"id": f"near-{i}", "text": typos(docs[i]["text"], 0.02, i) + " " + sentence(rng)}
        )
    path = write_jsonl(tmp_path / "docs.jsonl", docs)
    digests = []
    for workers, unit, name in (
        (1, 1 << 20, "out-1"),
        (2, 40_000, "out-2"),
        (2, 40_000, "x=1 [*]"),
    ):
        recipe = load_recipe("dedup", inputs={"docs": str(path)}, require_inputs=True)
        out = tmp_path / name
        build(recipe, out, BuildOptions(workers=workers, unit_bytes=unit, progress=False))
        digests.append(
            {
                p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*.parquet"))
            }
        )
    assert digests[0] == digests[1] == digests[2]
    removed = pq.read_table(tmp_path / "out-1" / "rejects" / "near_dedup.parquet")
    assert len(removed) > 30


def test_decide_explains_each_removal():
    step = NearDedup(NearDedupArgs(threshold=0.5))
    text = base_text(9)
    table = pa.table(
        {
            "id": ["x", "y", "z"],
            "text": [text, truncate(text, 0.9), base_text(10)],
            "license": ["L"] * 3,
            "source": ["s"] * 3,
        }
    )
    frame = pl.from_arrow(step.signatures(table)).with_columns(
        _order=pl.int_range(3, dtype=pl.Int64)
    )
    decided = step.decide(frame)
    assert decided["_order"].to_list() == [1]
    detail = json.loads(decided["detail"][0])
    assert detail["cluster_id"] == 0 and detail["kept_id"] == "x"
    assert 0.7 < detail["jaccard_estimate"] <= 1.0 and detail["jaccard"] is None
