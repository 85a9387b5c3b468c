"""Near-duplicate removal: pmc-data's MinHash step against datatrove's MinHash pipeline.

    python benchmarks/dedup.py                       # 50k documents, 2 workers, 10x scaling run
    python benchmarks/dedup.py --docs 3000 --scale 2 --keep  # a quick check; keeps the files

Both tools de-duplicate the same generated, labelled corpus on the same machine in the same run,
with the same word 5-gram shingles and the same LSH bands and rows (derived from the threshold
with datasketch's ``_optimal_param``, false-positive and false-negative weights 0.5 each).

The corpus is scholarly/medical prose from a seeded RNG: about 60 % unique originals, the rest
variants of an original made with realistic edits (character typos, swapped sentences, an
inserted copyright, license or "Received ...; accepted ..." line, truncation, PDF-style
re-hyphenation). Each variant is labelled with its exact word-5-gram Jaccard to its original
(lower-cased, punctuation replaced by spaces, split on whitespace: the words pmc-data shingles).
A variant is a true duplicate iff that Jaccard is at least ``--threshold``; a true cluster is an
original and its true duplicates, and of a cluster of k documents k-1 should be removed.

pmc-data runs the built-in ``dedup`` recipe (``normalize_text``, ``exact_dedup``,
``near_dedup``). datatrove runs JsonlReader -> MinhashDedupSignature -> MinhashDedupBuckets ->
MinhashDedupCluster -> MinhashDedupFilter (removed documents to an exclusion JsonlWriter) under
LocalPipelineExecutor, in its own virtual environment (``--datatrove-python``, or
benchmarks/.venv-datatrove, created on first use). Its input is the same corpus cut into one
file per worker, since datatrove parallelises over files. datatrove's English word tokenizer
is spaCy's; it is replaced by a whitespace split, which is what pmc-data and the labels use and
is cheaper than spaCy, so the swap does not slow datatrove down.

Each tool runs as its own subprocess; seconds are wall-clock including interpreter start-up,
memory is the peak summed RSS of the process tree, sampled every 20 ms. Then pmc-data runs
again on a corpus ``--scale`` times larger (generated before timing) to show how time grows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil
import pyarrow.parquet as pq
from datasketch.lsh import _optimal_param
from measure import measure

HERE = Path(__file__).resolve().parent
DATATROVE_VENV = HERE / ".venv-datatrove"
# orjson: datatrove's JsonlReader and JsonlWriter refuse to run without it (its "io" extra).
# xxhash<4: datatrove hashes str shingles, which xxhash 4 rejects (its "processing" extra pins
# the same).
DATATROVE_PACKAGES = ("datatrove", "orjson", "regex", "tokenizers", "xxhash<4")
# Imports what the pipeline needs and hashes one str shingle the way MinhashDedupSignature does.
DATATROVE_CHECK = (
    "import datatrove, orjson, regex, tokenizers\n"
    "from datatrove.utils.hashes.xxhash import xxhash64\n"
    "xxhash64('a b c d e')"
)
NGRAM = 5

FUNCTION_WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "the of and in to a with for was were is are by on as at from that this these which or "
    "be been than after between during among within without not no both each all more less "
    "most only also however whereas while when but its their our we it there such other"
).split()

CONTENT_WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "patient patients cohort participants subjects controls cases group groups study studies "
    "trial trials randomised randomized controlled prospective retrospective observational "
    "multicentre longitudinal analysis analyses regression multivariate univariate adjusted "
    "unadjusted hazard ratio odds risk relative absolute incidence prevalence mortality "
    "morbidity survival outcome outcomes endpoint primary secondary baseline follow-up months "
    "years weeks days median mean standard deviation interquartile range confidence interval "
    "significant significantly associated association correlation correlated increase "
    "increased decrease decreased reduction reduced higher lower elevated difference "
    "differences compared comparison versus placebo treatment treated therapy therapeutic "
    "intervention administration dose doses dosage regimen daily oral intravenous "
    "subcutaneous infusion injection antibiotic antibiotics antimicrobial resistance "
    "infection infections bacterial viral sepsis pneumonia inflammation inflammatory "
    "cytokine cytokines interleukin tumour tumor necrosis factor receptor receptors "
    "expression gene genes protein proteins mutation mutations variant polymorphism "
    "genotype phenotype sequencing transcription signalling signaling pathway pathways "
    "kinase phosphorylation apoptosis proliferation differentiation metastasis carcinoma "
    "adenocarcinoma lymphoma leukaemia malignancy malignant benign lesion lesions biopsy "
    "histological histopathological immunohistochemistry staining specimens tissue tissues "
    "cell cells cellular mitochondrial membrane plasma serum blood urine cerebrospinal "
    "fluid concentration concentrations levels glucose insulin glycated haemoglobin "
    "cholesterol lipoprotein triglycerides creatinine albumin bilirubin sodium potassium "
    "pressure systolic diastolic hypertension diabetes obesity metabolic syndrome "
    "cardiovascular cardiac myocardial infarction coronary artery heart failure "
    "arrhythmia atrial fibrillation stroke cerebral ischaemic haemorrhagic neurological "
    "cognitive impairment dementia depression anxiety psychiatric renal kidney chronic "
    "acute injury hepatic liver cirrhosis fibrosis pulmonary respiratory asthma airway "
    "ventilation oxygen saturation intensive care unit hospital admission discharge "
    "readmission emergency department surgery surgical procedure postoperative "
    "complications anaesthesia laparoscopic resection transplantation imaging magnetic "
    "resonance tomography ultrasound radiographic diagnosis diagnostic sensitivity "
    "specificity accuracy predictive value screening prognosis prognostic biomarker "
    "biomarkers clinical clinicians physicians nurses healthcare population populations "
    "children adolescents adults elderly women men pregnancy maternal neonatal infants "
    "age sex gender ethnicity socioeconomic smoking alcohol exercise dietary nutritional "
    "vitamin supplementation vaccine vaccination immunisation antibody antibodies immune "
    "response adverse events toxicity tolerability safety efficacy effectiveness "
    "guidelines recommendations evidence systematic review meta-analysis heterogeneity "
    "bias sample size power statistical statistically evaluated assessed measured "
    "determined observed reported performed conducted included excluded enrolled "
    "recruited randomly allocated assigned received underwent demonstrated suggest "
    "suggests indicate indicates findings results data model models mechanism mechanisms "
    "potential novel previous previously further additional important moderate severe "
    "mild recurrent persistent progressive"
).split()

MONTHS = (  # noqa: SIM905 - a word list reads better as prose
    "January February March April May June July August September October November December"
).split()
SURNAMES = ("Smith", "Wang", "Garcia", "Müller", "Kim", "Nguyen", "Rossi", "Okafor", "Patel")
JOURNALS = ("bmj", "jama", "nejm", "lancet", "plos", "ccm", "jco", "ajrccm", "cid")


def _zipf(words: list[str]) -> list[float]:
    """Cumulative Zipf-like weights, so that common phrases recur across unrelated documents
    the way they do in a real corpus."""
    total, cumulative = 0.0, []
    for rank in range(len(words)):
        total += 1.0 / (rank + 3) ** 0.9
        cumulative.append(total)
    return cumulative


FUNCTION_WEIGHTS, CONTENT_WEIGHTS = _zipf(FUNCTION_WORDS), _zipf(CONTENT_WORDS)

EDITS = ("reorder", "truncate", "typos", "rehyphenate", "boilerplate")

DATATROVE = textwrap.dedent(
    """
    import sys

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.word_tokenizers import WordTokenizer


    class Whitespace(WordTokenizer):
        # The English default is spaCy's tokenizer; the benchmark compares on whitespace words.
        def word_tokenize(self, text):
            return text.split()

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]


    def main():
        source, work = sys.argv[1], sys.argv[2]
        workers, n_grams, bands, rows = (int(a) for a in sys.argv[3:7])
        config = MinhashConfig(n_grams=n_grams, num_buckets=bands, hashes_per_bucket=rows)
        reader = JsonlReader(source, glob_pattern="*.jsonl")
        signatures = LocalPipelineExecutor(
            [reader, MinhashDedupSignature(f"{work}/sigs", config=config, language=Whitespace())],
            tasks=workers,
            workers=workers,
            logging_dir=f"{work}/logs/sigs",
        )
        buckets = LocalPipelineExecutor(
            [MinhashDedupBuckets(f"{work}/sigs", f"{work}/buckets", config=config)],
            tasks=bands,
            workers=workers,
            logging_dir=f"{work}/logs/buckets",
            depends=signatures,
        )
        clusters = LocalPipelineExecutor(
            [MinhashDedupCluster(f"{work}/buckets", f"{work}/remove_ids", config=config)],
            tasks=1,
            logging_dir=f"{work}/logs/clusters",
            depends=buckets,
        )
        removed = JsonlWriter(f"{work}/removed", compression=None)
        final = LocalPipelineExecutor(
            [
                reader,
                MinhashDedupFilter(f"{work}/remove_ids", exclusion_writer=removed),
                JsonlWriter(f"{work}/kept", compression=None),
            ],
            tasks=workers,
            workers=workers,
            logging_dir=f"{work}/logs/filter",
            depends=clusters,
        )
        final.run()


    if __name__ == "__main__":
        main()
    """
)


# --- corpus ------------------------------------------------------------------------------------

# The words of pmc_data.dedup.shingles.words, so that labels and pmc-data agree: anything not a
# letter or digit is a space ("1.45-2.04" -> "1 45 2 04", "treat- ment" -> "treat ment").
_PUNCTUATION = re.compile(r"[\W_]+")


def shingles(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    """Word n-grams after lower-casing, replacing punctuation by spaces, splitting on spaces."""
    words = _PUNCTUATION.sub(" ", text.lower()).split()
    return set(zip(*(words[i:] for i in range(n)), strict=False))


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity of two shingle sets."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def _number(rng: random.Random) -> str:
    """A number as papers write them: a percentage, a sample size, a p-value, a CI, ..."""
    kind = rng.randrange(8)
    if kind == 0:
        return f"({rng.randint(2, 98)}.{rng.randint(0, 9)}%)"
    if kind == 1:
        return f"(n = {rng.randint(12, 4000)})"
    if kind == 2:
        return f"(p < 0.0{rng.randint(1, 5)})"
    if kind == 3:
        low = rng.uniform(0.3, 2.0)
        return f"(95% CI {low:.2f}-{low + rng.uniform(0.1, 2.0):.2f})"
    if kind == 4:
        return f"{rng.randint(1, 99)}.{rng.randint(0, 9)}%"
    if kind == 5:
        return f"[{rng.randint(1, 60)}]"
    if kind == 6:
        return f"{rng.randint(2, 900)} mg/kg"
    return str(rng.randint(1990, 2023))


def _sentence(rng: random.Random) -> list[str]:
    """The words of one sentence of 8-25 words (more with numbers), capitalised, with a stop."""
    size = rng.randint(8, 25)
    content = rng.choices(CONTENT_WORDS, cum_weights=CONTENT_WEIGHTS, k=size)
    function = rng.choices(FUNCTION_WORDS, cum_weights=FUNCTION_WEIGHTS, k=size)
    # Function words between content words, never two in a row: reads more like prose.
    words, previous = [], True
    for i in range(size):
        previous = not previous and rng.random() < 0.45
        words.append(function[i] if previous else content[i])
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        words.insert(rng.randrange(1, len(words)), _number(rng))
    if rng.random() < 0.4:
        at = rng.randrange(2, len(words) - 1)
        words[at] += ","
    words[0] = words[0].capitalize()
    words[-1] += "."
    return words


def _document(rng: random.Random) -> list[str]:
    """Sentences of one original document of 80-400 words."""
    target, count, sentences = rng.randint(80, 400), 0, []
    while count < target:
        words = _sentence(rng)
        count += len(words)
        sentences.append(" ".join(words))
    return sentences


def _join(sentences: list[str], rng: random.Random) -> str:
    """A document's text from its sentences."""
    # Paragraph breaks change no shingle, but make the text look like extracted articles.
    parts = [sentences[0]]
    for sentence in sentences[1:]:
        parts.append("\n\n" if rng.random() < 0.12 else " ")
        parts.append(sentence)
    return "".join(parts)


def _boilerplate(rng: random.Random) -> str:
    """A copyright, license, history or DOI line such as PDF extraction leaves in a text."""
    year = rng.randint(2005, 2023)
    kind = rng.randrange(5)
    if kind == 0:
        return (
            f"Received {rng.randint(1, 28)} {rng.choice(MONTHS)} {year}; accepted "
            f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {year + rng.randint(0, 1)}."
        )
    if kind == 1:
        return (
            f"© {year} The Author(s). This article is licensed under a Creative Commons "
            "Attribution 4.0 International License."
        )
    if kind == 2:
        return (
            f"Copyright © {year} {rng.choice(SURNAMES)} et al. This is an open access article "
            "distributed under the Creative Commons Attribution License, which permits "
            "unrestricted use, distribution, and reproduction in any medium, provided the "
            "original work is properly cited."
        )
    if kind == 3:
        return (
            f"Published online {rng.randint(1, 28)} {rng.choice(MONTHS)} {year}. "
            f"doi:10.{rng.randint(1000, 9999)}/{rng.choice(JOURNALS)}.{year}."
            f"{rng.randint(10000, 99999)}"
        )
    return (
        f"© {year} Elsevier Ltd. All rights reserved. This is an open access article under the "
        "CC BY-NC-ND license (http://creativecommons.org/licenses/by-nc-nd/4.0/)."
    )


def _typo(word: str, rng: random.Random) -> str:
    """The word with one character swapped, dropped, doubled or replaced."""
    at = rng.randrange(len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    if kind == 1:
        return word[:at] + word[at + 1 :]
    if kind == 2:
        return word[:at] + word[at] + word[at:]
    return word[:at] + rng.choice("abcdefghilmnoprstu") + word[at + 1 :]


def _words_edit(sentences: list[str], rng: random.Random, rate: float, min_len: int, edit) -> list:
    """Sentences with ``edit`` applied to a ``rate`` share of their alphabetic words of at least
    ``min_len`` characters."""
    out = []
    for sentence in sentences:
        words = sentence.split(" ")
        for i, word in enumerate(words):
            if len(word) >= min_len and word.isalpha() and rng.random() < rate:
                words[i] = edit(word, rng)
        out.append(" ".join(words))
    return out


def _rehyphenate(word: str, rng: random.Random) -> str:
    """The word broken across a PDF line, as extraction leaves it: "treat- ment"."""
    at = rng.randrange(3, len(word) - 2)
    return f"{word[:at]}- {word[at:]}"


def _variant(sentences: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """An edited copy of an original's sentences, and the names of the edits applied."""
    kinds = set(rng.sample(EDITS, rng.choice((1, 1, 2, 2, 3))))
    level = rng.random()
    out = list(sentences)
    # A fixed order, so truncation never cuts off inserted boilerplate.
    for kind in (k for k in EDITS if k in kinds):
        strength = min(1.0, max(0.02, level + rng.uniform(-0.2, 0.2)))
        if kind == "reorder":
            for _ in range(1 + int(strength * 4)):
                i, j = rng.randrange(len(out)), rng.randrange(len(out))
                out[i], out[j] = out[j], out[i]
        elif kind == "truncate":
            keep = max(1, round(len(out) * (1 - 0.5 * strength)))
            out = out[:keep]
        elif kind == "typos":
            out = _words_edit(out, rng, 0.05 * strength, 4, _typo)
        elif kind == "rehyphenate":
            out = _words_edit(out, rng, 0.3 * strength, 8, _rehyphenate)
        else:
            for _ in range(1 + (strength > 0.6)):
                if rng.random() < 0.5:
                    out.insert(0, _boilerplate(rng))
                else:
                    out.append(_boilerplate(rng))
    return out, sorted(kinds)


@dataclass
class Corpus:
    """A generated corpus and its ground truth."""

    path: Path
    docs: int
    size: int
    originals: int
    #: Cluster key (the original's id) -> ids of the original and its true duplicates.
    clusters: dict[str, list[str]] = field(default_factory=dict)
    #: (original id, variant id, true Jaccard) for every variant.
    pairs: list[tuple[str, str, float]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    @property
    def expected(self) -> int:
        """Removals a perfect de-duplicator makes: k-1 for each true cluster of k documents."""
        return sum(len(members) - 1 for members in self.clusters.values())


def generate(path: Path, labels: Path, n: int, threshold: float, seed: int) -> Corpus:
    """``n`` labelled JSONL documents (``id``, ``text``); labels JSONL written beside them."""
    rng = random.Random(seed)
    variants = round(n * 0.4)
    originals = n - variants
    # Each variant picks its original uniformly: most originals stay unique, some get
    # several versions, as preprints, reprints and mirrors do.
    parents = [0] * originals
    for _ in range(variants):
        parents[rng.randrange(originals)] += 1
    texts: list[str] = []
    groups: list[tuple[int, float | None]] = []  # per text: original's index, Jaccard
    starts: list[int] = []
    for count in parents:
        sentences = _document(rng)
        starts.append(len(texts))
        texts.append(_join(sentences, rng))
        groups.append((len(starts) - 1, None))
        if count:
            base = shingles(texts[-1])
            for _ in range(count):
                # Heavy edit mixes can leave almost nothing of the original; redraw those so
                # that the variants span Jaccard 0.3-1.0.
                for _attempt in range(8):
                    text = _join(_variant(sentences, rng)[0], rng)
                    similarity = jaccard(base, shingles(text))
                    if similarity >= 0.3:
                        break
                texts.append(text)
                groups.append((len(starts) - 1, similarity))
    order = list(range(n))
    rng.shuffle(order)  # variants are not next to their originals
    ids = [""] * n
    for position, index in enumerate(order):
        ids[index] = f"doc{position:08d}"
    corpus = Corpus(path, n, 0, originals, ids=set(ids))
    with open(path, "w", encoding="utf-8") as handle:
        for index in order:
            handle.write(json.dumps({"id": ids[index], "text": texts[index]}) + "\n")
    del texts
    with open(labels, "w", encoding="utf-8") as handle:
        for index, (group, similarity) in enumerate(groups):
            key = ids[starts[group]]
            cluster = None
            if similarity is None:
                # An original is in a true cluster iff one of its variants is a true duplicate.
                following = groups[index + 1 : index + 1 + parents[group]]
                if any(s is not None and s >= threshold for _, s in following):
                    cluster = key
            else:
                corpus.pairs.append((key, ids[index], similarity))
                if similarity >= threshold:
                    cluster = key
            if cluster is not None:
                corpus.clusters.setdefault(cluster, []).append(ids[index])
            record = {"id": ids[index], "cluster": cluster, "jaccard": similarity}
            if similarity is not None:
                record["original"] = key
            handle.write(json.dumps(record) + "\n")
    corpus.size = path.stat().st_size
    return corpus


def split(corpus: Path, folder: Path, parts: int) -> None:
    """The corpus as ``parts`` JSONL files of consecutive lines (datatrove's unit of work)."""
    folder.mkdir(parents=True)
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    step = -(-len(lines) // parts)
    for part in range(parts):
        chunk = lines[part * step : (part + 1) * step]
        (folder / f"{part:05d}.jsonl").write_text("".join(chunk), encoding="utf-8")


# --- running ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One tool's run: time, memory and which documents it kept and removed."""

    tool: str
    docs: int
    seconds: float
    peak: int
    kept: set[str]
    removed: set[str]
    by_step: dict[str, int] = field(default_factory=dict)


def ids_of_parquet(files: list[Path]) -> list[str]:
    """The ``id`` column of Parquet files."""
    return [i for f in files for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]


def ids_of_jsonl(folder: Path) -> list[str]:
    """The ``id`` field of every JSONL document under a folder."""
    ids = []
    for file in sorted(folder.rglob("*.jsonl")):
        with open(file, encoding="utf-8") as handle:
            ids.extend(json.loads(line)["id"] for line in handle if line.strip())
    return ids


def pmc_data(corpus: Corpus, out: Path, args, bands: int, rows: int) -> Run:
    """pmc-data's ``dedup`` recipe on the corpus."""
    near = "steps.near_dedup"
    settings = {
        "threshold": args.threshold,
        "ngram": NGRAM,
        "num_perm": args.num_perm,
        "bands": bands,
        "rows": rows,
    }
    command = [sys.executable, "-m", "pmc_data", "-q", "build", "dedup"]
    command += ["--input", f"docs={corpus.path}", "--output", str(out)]
    command += ["--workers", str(args.workers), "--overwrite"]
    for key, value in settings.items():
        command += ["--set", f"{near}.{key}={value}"]
    seconds, peak = measure(command, HERE.parent, out.parent / f"{out.name}.log")
    kept = ids_of_parquet(sorted((out / "data").rglob("*.parquet")))
    by_step, removed = {}, []
    for file in sorted((out / "rejects").rglob("*.parquet")):
        ids = ids_of_parquet([file])
        by_step[file.stem] = len(ids)
        removed += ids
    return Run("pmc-data", corpus.docs, seconds, peak, set(kept), set(removed), by_step)


def datatrove(
    corpus: Corpus, shards: Path, work: Path, python: Path, args, bands: int, rows: int
) -> Run:
    """datatrove's four MinHash stages on the corpus, cut into one file per worker."""
    work.mkdir()
    program = work / "minhash.py"
    program.write_text(DATATROVE)
    numbers = [args.workers, NGRAM, bands, rows]
    command = [str(python), str(program), str(shards), str(work), *map(str, numbers)]
    seconds, peak = measure(command, HERE.parent, work / "run.log")
    kept, removed = ids_of_jsonl(work / "kept"), ids_of_jsonl(work / "removed")
    return Run("datatrove", corpus.docs, seconds, peak, set(kept), set(removed))


def datatrove_python(given: str | None) -> Path:
    """The interpreter that runs datatrove: ``given``, or a venv created on first use."""
    python = Path(given) if given else DATATROVE_VENV / "bin" / "python"
    if not given and not python.exists():
        print(f"creating {DATATROVE_VENV} ({', '.join(DATATROVE_PACKAGES)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DATATROVE_VENV)], check=True)
        # Keeps the venv out of git without touching the project's .gitignore.
        (DATATROVE_VENV / ".gitignore").write_text("*\n")
        pip = [str(python), "-m", "pip", "install", "--quiet", *DATATROVE_PACKAGES]
        subprocess.run(pip, check=True)
    check = subprocess.run([str(python), "-c", DATATROVE_CHECK], capture_output=True, text=True)
    if check.returncode:
        packages = " ".join(f"'{p}'" for p in DATATROVE_PACKAGES)
        sys.exit(
            f"{python} cannot run datatrove's MinHash ({check.stderr.strip().splitlines()[-1]});"
            f" pip install {packages} into it"
        )
    return python


# --- scoring ----------------------------------------------------------------------------------


def score(run: Run, corpus: Corpus) -> tuple[float, float, float]:
    """Precision, recall and F1 of a run's removals against the true clusters."""
    unknown = run.removed - corpus.ids
    if unknown or (run.kept | run.removed) != corpus.ids or run.kept & run.removed:
        missing = corpus.ids - run.kept - run.removed
        raise RuntimeError(
            f"{run.tool}: ids do not partition the corpus: {len(unknown)} unknown removed "
            f"(e.g. {sorted(unknown)[:3]}), {len(missing)} neither kept nor removed "
            f"(e.g. {sorted(missing)[:3]}), {len(run.kept & run.removed)} both"
        )
    tp = sum(
        min(sum(m in run.removed for m in members), len(members) - 1)
        for members in corpus.clusters.values()
    )
    precision = tp / len(run.removed) if run.removed else 1.0
    recall = tp / corpus.expected if corpus.expected else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


BINS = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def merge_rates(runs: list[Run], corpus: Corpus, bands: int, rows: int) -> list[str]:
    """Markdown rows: by true Jaccard, the share of (original, only variant) pairs merged.

    Only originals with exactly one variant count, so "at least one of the two removed" can
    be attributed to that pair.
    """
    variants: dict[str, int] = {}
    for original, _, _ in corpus.pairs:
        variants[original] = variants.get(original, 0) + 1
    edges = [*BINS, 1.0]
    lines = []
    for low, high in itertools.pairwise(edges):
        last = low == 1.0
        pairs = [
            (o, v)
            for o, v, s in corpus.pairs
            if variants[o] == 1 and (s >= 1.0 if last else low <= s < high)
        ]
        if not pairs:
            continue
        middle = 1.0 if last else (low + high) / 2
        lsh = 1 - (1 - middle**rows) ** bands
        label = "1.0 (same shingles)" if last else f"{low:.2f}-{high:.2f}"
        rates = [
            sum(o in run.removed or v in run.removed for o, v in pairs) / len(pairs) for run in runs
        ]
        cells = " | ".join(f"{rate:.1%}" for rate in rates)
        lines.append(f"| {label} | {len(pairs):,} | {lsh:.1%} | {cells} |")
    return lines


def versions(python: Path) -> str:
    """The versions line; datatrove's comes from its own interpreter."""
    names = ("pmc-data", "datasketch", "polars", "pyarrow")
    ours = {n: metadata.version(n) for n in names}
    query = "import importlib.metadata as m; print(m.version('datatrove'))"
    theirs = subprocess.run([str(python), "-c", query], capture_output=True, text=True, check=True)
    ours["datatrove"] = theirs.stdout.strip()
    order = ("pmc-data", "datatrove", "datasketch", "polars", "pyarrow")
    return ", ".join(f"{n} {ours[n]}" for n in order) + f", Python {platform.python_version()}"


def row(run: Run, corpus: Corpus) -> str:
    """One tool's markdown table row."""
    precision, recall, f1 = score(run, corpus)
    return (
        f"| {run.tool} | {run.docs:,} | {run.seconds:.1f} | {run.docs / run.seconds:,.0f} | "
        f"{run.peak / 2**20:,.0f} | {precision:.4f} | {recall:.4f} | {f1:.4f} |"
    )


def describe(corpus: Corpus, threshold: float) -> str:
    """A corpus and its ground truth in one line."""
    similarities = [s for _, _, s in corpus.pairs]
    above = sum(s >= threshold for s in similarities)
    low, high = min(similarities, default=0), max(similarities, default=0)
    return (
        f"{corpus.docs:,} documents, {corpus.size / 1e6:.0f} MB: {corpus.originals:,} originals, "
        f"{len(similarities):,} variants (Jaccard {low:.2f}-{high:.2f}, {above:,} >= "
        f"{threshold}); {len(corpus.clusters):,} true clusters, {corpus.expected:,} removals "
        "expected"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=112)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", type=int, default=10, help="growth factor for the time check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--datatrove-python",
        help=f"interpreter with datatrove installed (default: {DATATROVE_VENV.name}, created)",
    )
    args = parser.parse_args()
    bands, rows = _optimal_param(args.threshold, args.num_perm, 0.5, 0.5)
    python = datatrove_python(args.datatrove_python)

    tmp = Path(tempfile.mkdtemp(prefix="pmc-dedup-bench-"))
    try:
        small = generate(
            tmp / "docs.jsonl", tmp / "labels.jsonl", args.docs, args.threshold, args.seed
        )
        split(small.path, tmp / "shards", args.workers)
        os.sync()  # the corpus's write-back does not compete with the timed runs
        print(f"input: {describe(small, args.threshold)}")
        print(
            f"LSH: threshold {args.threshold}, {args.num_perm} permutations -> {bands} bands x "
            f"{rows} rows (datasketch _optimal_param), word {NGRAM}-grams, "
            f"{args.workers} workers each"
        )
        print(f"versions: {versions(python)}")
        print(
            f"machine: {platform.machine()}, {psutil.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
        )
        # Untimed imports first, so neither timed run pays for a cold file cache.
        subprocess.run([sys.executable, "-c", "import pmc_data.cli, polars, pyarrow"], check=True)
        warm = "import datatrove.pipeline.dedup.minhash, datatrove.executor"
        subprocess.run([str(python), "-c", warm], check=True)

        ours = pmc_data(small, tmp / "pmc", args, bands, rows)
        theirs = datatrove(small, tmp / "shards", tmp / "datatrove", python, args, bands, rows)
        runs = [ours, theirs]
        big = scaled = None
        if args.scale > 1:
            # Generated after the comparison: minutes of generation just before a timed run
            # slowed whichever tool ran first (pmc-data 5.9 -> 7.4 s, datatrove 13.6 -> 14.8).
            big = generate(
                tmp / "docs-big.jsonl",
                tmp / "labels-big.jsonl",
                args.docs * args.scale,
                args.threshold,
                args.seed + 1,
            )
            os.sync()
            print(f"scaling input: {describe(big, args.threshold)}")
            scaled = pmc_data(big, tmp / "pmc-big", args, bands, rows)

        print("\n| tool | docs | seconds | docs/s | peak MiB | precision | recall | F1 |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for run in runs:
            print(row(run, small))
        if scaled:
            scaled.tool = f"pmc-data ({args.scale}x)"
            print(row(scaled, big))
        print(
            f"\npmc-data / datatrove: throughput {theirs.seconds / ours.seconds:.2f}x, "
            f"peak memory {ours.peak / theirs.peak:.2f}x"
        )
        print(
            "removed: "
            + "; ".join(f"{r.tool} {len(r.removed):,}" for r in [*runs, scaled] if r)
            + f" (expected {small.expected:,}"
            + (f"; {big.expected:,} at {args.scale}x)" if big else ")")
        )
        print(
            "pmc-data removals by step: "
            + ", ".join(f"{step} {count:,}" for step, count in ours.by_step.items())
        )
        if scaled:
            ratio = scaled.seconds / ours.seconds
            verdict = "met" if ratio <= 1.1 * args.scale else "not met"
            print(
                f"scaling, pmc-data, {args.workers} workers: {small.docs:,} docs {ours.seconds:.1f}"
                f" s -> {big.docs:,} docs {scaled.seconds:.1f} s: {ratio:.2f}x time for "
                f"{args.scale}x documents (target <= {1.1 * args.scale:g}x: {verdict}); peak "
                f"{ours.peak / 2**20:,.0f} -> {scaled.peak / 2**20:,.0f} MiB"
            )
        print(
            "\nShare of (original, only variant) pairs of which the tool removed at least one, by "
            "true Jaccard; LSH = 1-(1-s^rows)^bands at the bin's middle:\n"
        )
        print("| true Jaccard | pairs | LSH | pmc-data | datatrove |")
        print("|---|---:|---:|---:|---:|")
        print("\n".join(merge_rates(runs, small, bands, rows)))
    finally:
        if args.keep:
            print(f"\nkept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
