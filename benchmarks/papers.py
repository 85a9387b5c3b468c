"""JATS parsing: pmc-data's parse + clean against `pubmed_parser` on the same PMC OA files.

    python benchmarks/papers.py                      # 2,000 articles, memory run on 2k and 20k
    python benchmarks/papers.py --articles 200 --scale 2
    python benchmarks/papers.py --articles 400 --scale 1 --repeats 5
    python benchmarks/papers.py --articles 400 --scale 1 --repeats 5 --cold-caches

The corpus is ``--articles`` JATS articles written to a temporary folder as ``PMC<n>.nxml``,
copies of the real eLife articles in /work/shared/fixtures/jats (read at run time, never
copied into the repository), each made distinct with a seeded RNG: a PMC id of its own, and
(all but the first copy of each original) in 20-60 % of its paragraphs the purely alphabetic
words shuffled among themselves and about 5 % of them replaced by other words of the article
(punctuation, brackets and inline elements stay where they are, so the XML, citations and
figure mentions keep their structure).

Throughput, both tools on the same files, each in its own worker process (one process, one
core), ``--repeats`` passes over the corpus in ``--chunks`` chunks, the two tools taking turns
chunk by chunk (a shared machine's speed drifts by 20 % and more over a minute, for both
alike); each tool's time is the sum over chunks of its fastest pass. Each times only its own
loop over file contents already read (so neither start-up, imports nor disk is counted; the
timed loop keeps no texts, a final untimed pass collects them):

- pmc-data: ``CleanPaperText().transform(parse_article(data).text)`` per file.
- pubmed_parser (in benchmarks/.venv-pubmed-parser, created on first use): per file
  ``parse_pubmed_xml(path)`` (title, abstract, metadata) and
  ``parse_pubmed_paragraph(path, all_paragraph=True)`` (body paragraphs), its documented way to
  get an article's text. Its API takes paths, not bytes; the files were just read, so its
  ``open`` is served by the page cache.

Recall, bag of words (lower-cased alphanumeric tokens, counts clipped): of pubmed_parser's body
paragraph words, the share also in pmc-data's text; and the reverse, of pmc-data's words, the
share in pubmed_parser's title + abstract + paragraphs. Each both on all tokens and on tokens
that are not pure numbers (mostly citation numbers and years, which pmc-data drops on purpose).
A third figure restricts the first to what pmc-data means to keep: paragraphs outside figures,
tables, sub-articles (decision letters, author responses), supplementary material, footnotes
and the back-matter sections it drops, less the text of citation and figure/table ``xref``s.

Memory: ``pmc-data build medc_k/pmc_oa`` (1 worker) on ``--articles`` and on ``--scale`` times
as many articles; peak RSS is the summed RSS of the process tree, sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import random
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil
from lxml import etree
from measure import measure

HERE = Path(__file__).resolve().parent
FIXTURES = Path("/work/shared/fixtures/jats")
PUBMED_VENV = HERE / ".venv-pubmed-parser"
PUBMED_PACKAGES = ("pubmed_parser",)
_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

# Each tool runs in a worker process that reads every file first, then answers commands on
# stdin: "time START END" runs the articles START..END-1 and reports the wall and CPU seconds
# (keeping nothing but a character count: holding on to every paragraph string while timing
# slowed pubmed_parser down as a run went on, which measured the harness, not the parser);
# "texts" makes an untimed pass that keeps the texts for the recall and exits.
SERVE = textwrap.dedent(
    """
    import json, sys, time

    def serve(count, run, size, keep):
        errors = {}
        for line in sys.stdin:
            command = line.split()
            if command[0] == "time":
                chars = 0
                wall, cpu = time.perf_counter(), time.process_time()
                for i in range(int(command[1]), int(command[2])):
                    try:
                        chars += size(run(i))
                    except Exception as exc:
                        errors[i] = repr(exc)[:200]
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                print(json.dumps([wall, cpu]), flush=True)
            elif command[0] == "texts":
                texts = []
                for i in range(count):
                    try:
                        texts.append(keep(run(i)))
                    except Exception:
                        texts.append(None)
                with open(sys.argv[2], "w") as handle:
                    json.dump({"texts": texts, "errors": list(errors.values())}, handle)
                print("[]", flush=True)
                return
    """
)

OURS = SERVE + textwrap.dedent(
    """
    from pmc_data.sources.jats import parse_article
    from pmc_data.steps import papers
    from pmc_data.steps.papers import CleanPaperText

    COLD_CACHES = False  # (set by --cold-caches)
    paths = json.loads(open(sys.argv[1]).read())
    contents = []
    for path in paths:
        with open(path, "rb") as handle:
            contents.append(handle.read())
    clean = CleanPaperText()

    def run(i):
        if COLD_CACHES:  # as if no article shared a bracket with another
            papers._kept_of_bracket.cache_clear()
        return clean.transform(parse_article(contents[i]).text)

    serve(len(paths), run, len, lambda text: text)
    """
)

PEER = SERVE + textwrap.dedent(
    """
    import pubmed_parser as pp

    paths = json.loads(open(sys.argv[1]).read())
    for path in paths:  # the same reads as pmc-data's side: contents in the page cache
        with open(path, "rb") as handle:
            handle.read()

    def run(i):
        meta = pp.parse_pubmed_xml(paths[i])
        paragraphs = pp.parse_pubmed_paragraph(paths[i], all_paragraph=True)
        return meta, paragraphs

    def size(result):
        meta, paragraphs = result
        return len(meta["abstract"]) + sum(len(p["text"]) for p in paragraphs)

    def keep(result):
        meta, paragraphs = result
        return {
            "title": meta["full_title"],
            "abstract": meta["abstract"],
            "paragraphs": [p["text"] for p in paragraphs],
        }

    serve(len(paths), run, size, keep)
    """
)

PEER_CHECK = "import pubmed_parser, lxml.etree; print(pubmed_parser.__version__)"


# --- corpus -----------------------------------------------------------------------------------


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


@dataclass
class Base:
    name: str
    tree: etree._ElementTree
    vocabulary: list[str]


def load_bases(folder: Path) -> list[Base]:
    files = sorted(folder.glob("*.xml")) + sorted(folder.glob("*.nxml"))
    if not files:
        sys.exit(
            f"no JATS articles (*.xml, *.nxml) in {folder}: this benchmark replicates real "
            "articles found there at run time (pass --fixtures FOLDER)"
        )
    bases = []
    for path in files:
        tree = etree.parse(str(path), _SAFE)
        words = re.findall(r"\b[A-Za-z]{3,}\b", " ".join(tree.getroot().itertext()))
        bases.append(Base(path.name, tree, sorted(set(words))))
    return bases


_ALPHA = re.compile(r"[A-Za-z]+")


def _perturb(text: str | None, rng: random.Random, vocabulary: list[str]) -> str | None:
    """Alphabetic words shuffled among themselves, ~5 % replaced; everything else in place."""
    if not text or not text.strip():
        return text
    parts = re.split(r"(\s+)", text)
    slots = [i for i, part in enumerate(parts) if _ALPHA.fullmatch(part)]
    words = [parts[i] for i in slots]
    rng.shuffle(words)
    for i, word in zip(slots, words, strict=True):
        parts[i] = rng.choice(vocabulary) if rng.random() < 0.05 else word
    return "".join(parts)


def variant(base: Base, pmc: int, rng: random.Random, perturb: bool = True) -> bytes:
    tree = copy.deepcopy(base.tree)
    root = tree.getroot()
    meta = root.find("front/article-meta")
    if meta is not None:
        ids = meta.findall("article-id")
        pmc_id = next((n for n in ids if n.get("pub-id-type") in ("pmc", "pmcid")), None)
        if pmc_id is None:
            pmc_id = etree.Element("article-id", {"pub-id-type": "pmc"})
            if ids:
                ids[0].addprevious(pmc_id)
                pmc_id.tail = ids[0].tail
            else:
                meta.insert(0, pmc_id)
        pmc_id.text = str(pmc)
    if not perturb:
        return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    # At least one paragraph with words to shuffle, so that no two copies read the same.
    paragraphs = [p for p in root.iter("p") if len(_ALPHA.findall(p.text or "")) >= 5]
    count = min(len(paragraphs), max(1, round(rng.uniform(0.2, 0.6) * len(paragraphs))))
    for p in rng.sample(paragraphs, count):
        p.text = _perturb(p.text, rng, base.vocabulary)
        for child in p:
            child.tail = _perturb(child.tail, rng, base.vocabulary)
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


@dataclass
class Corpus:
    folder: Path
    paths: list[Path]
    bases: list[str]  # the base article of each file
    bytes: int


def generate(folder: Path, n: int, bases: list[Base], seed: int, first_pmc: int) -> Corpus:
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    paths, names, size = [], [], 0
    for i in range(n):
        base = bases[i % len(bases)]
        pmc = first_pmc + i
        data = variant(base, pmc, rng, perturb=i >= len(bases))  # each original once
        path = folder / f"PMC{pmc}.nxml"
        path.write_bytes(data)
        paths.append(path)
        names.append(base.name)
        size += len(data)
    return Corpus(folder, paths, names, size)


# --- running ----------------------------------------------------------------------------------


@dataclass
class Parse:
    tool: str
    seconds: float  # the timed loops only: per chunk, the fastest of the repeats, summed
    cpu_seconds: float
    texts: list
    errors: list[str] = field(default_factory=list)
    #: Each repeat's seconds for the whole corpus (the chunks of one repeat summed).
    repeats: list[float] = field(default_factory=list)

    @property
    def done(self) -> int:
        return len(self.texts) - len(self.errors)

    @property
    def rate(self) -> float:
        return self.done / self.seconds


class Worker:
    """One tool's worker process (see SERVE): files read once, chunks timed on command."""

    def __init__(self, tool: str, python: Path, program: str, corpus: Corpus, work: Path):
        # Not "<tool>.py": a script named pubmed_parser.py would shadow the package it imports.
        stem = "run-" + re.sub(r"\W", "-", tool)
        script, listing = work / f"{stem}.py", work / f"{stem}-files.json"
        self.tool, self.result = tool, work / f"{stem}.json"
        script.write_text(program)
        listing.write_text(json.dumps([str(p) for p in corpus.paths]))
        self.log = open(work / f"{tool}.log", "wb")  # noqa: SIM115 - closed in finish()
        self.process = subprocess.Popen(
            [str(python), str(script), str(listing), str(self.result)],
            cwd=HERE.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True,
        )  # fmt: skip

    def _ask(self, command: str) -> list[float]:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            sys.exit(f"{self.tool}'s worker ended early; see {self.log.name}")
        return json.loads(line)

    def time(self, start: int, end: int) -> tuple[float, float]:
        wall, cpu = self._ask(f"time {start} {end}")
        return wall, cpu

    def finish(self) -> tuple[list, list[str]]:
        self._ask("texts")
        self.process.wait()
        self.log.close()
        out = json.loads(self.result.read_text())
        if out["errors"] and len(out["errors"]) == len(out["texts"]):
            sys.exit(f"{self.tool} failed on every file, e.g. {out['errors'][0]}")
        return out["texts"], out["errors"]


def timed_runs(workers: list[Worker], articles: int, repeats: int, chunks: int) -> list[Parse]:
    """Both tools over the corpus ``repeats`` times, chunk by chunk, alternating which goes
    first: the machine's speed drifts over seconds (a shared host), for both alike, so each
    chunk's times are compared with the other tool's taken moments apart. Each tool's time
    is the sum over chunks of its fastest repeat; a first, untimed chunk warms both up."""
    size = -(-articles // chunks)
    spans = [(start, min(start + size, articles)) for start in range(0, articles, size)]
    for worker in workers:
        worker.time(*spans[0])
    times = {w.tool: [[(0.0, 0.0)] * len(spans) for _ in range(repeats)] for w in workers}
    for repeat in range(repeats):
        for k, span in enumerate(spans):
            order = workers if (k + repeat) % 2 == 0 else workers[::-1]
            for worker in order:
                times[worker.tool][repeat][k] = worker.time(*span)
        line = ", ".join(
            f"{tool} {articles / sum(w for w, _ in chunk_times[repeat]):,.1f}"
            for tool, chunk_times in times.items()
        )
        print(f"repeat {repeat + 1}: {line} articles/s", flush=True)
    runs = []
    for worker in workers:
        per_repeat = times[worker.tool]
        fastest = [min(per_repeat[r][k] for r in range(repeats)) for k in range(len(spans))]
        texts, errors = worker.finish()
        runs.append(
            Parse(
                worker.tool,
                sum(wall for wall, _ in fastest),
                sum(cpu for _, cpu in fastest),
                texts,
                errors,
                [sum(wall for wall, _ in chunk_times) for chunk_times in per_repeat],
            )
        )
    return runs


def peer_python(given: str | None) -> Path:
    """The interpreter that runs pubmed_parser: ``given``, or a venv created on first use."""
    python = Path(given) if given else PUBMED_VENV / "bin" / "python"
    if not given and not python.exists():
        print(f"creating {PUBMED_VENV} ({', '.join(PUBMED_PACKAGES)})", flush=True)
        subprocess.run(["python3", "-m", "venv", str(PUBMED_VENV)], check=True)
        (PUBMED_VENV / ".gitignore").write_text("*\n")
        pip = [str(python), "-m", "pip", "install", "--quiet", *PUBMED_PACKAGES]
        install = subprocess.run(pip, capture_output=True, text=True)
        if install.returncode:
            sys.exit(f"pip install {' '.join(PUBMED_PACKAGES)} failed:\n{install.stderr[-3000:]}")
    check = subprocess.run([str(python), "-c", PEER_CHECK], capture_output=True, text=True)
    if check.returncode:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(f"{python} cannot import pubmed_parser ({last}); pip install pubmed_parser")
    return python


@dataclass
class Build:
    articles: int
    seconds: float
    peak: int
    rows: int
    removed: dict[str, int]


def build(corpus: Corpus, out: Path, log: Path, unit_size: str) -> Build:
    command = [
        sys.executable, "-m", "pmc_data", "-q", "build", "medc_k/pmc_oa",
        "--input", f"pmc={corpus.folder}", "--output", str(out), "--overwrite",
        "--workers", "1", "--unit-size", unit_size,
        "--set", "read.pmc_oa.license_policy=research",
        "--set", "steps.length_filter.min_words=1",
    ]  # fmt: skip
    seconds, peak = measure(command, HERE.parent, log)
    manifest = json.loads((out / "manifest.json").read_text())
    removed = {s["step"]: s["in"] - s["out"] for s in manifest["steps"] if s["in"] - s["out"] > 0}
    return Build(len(corpus.paths), seconds, peak, manifest["totals"]["rows"], removed)


# --- recall -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+")
_URL = re.compile(r"(?:https?://|ftp://|www\.)\S+")
#: Containers whose paragraphs pmc-data drops on purpose (with its default options).
DROPPED_CONTAINERS = {
    "fig": "figure captions",
    "table-wrap": "tables",
    "sub-article": "sub-articles",
    "supplementary-material": "supplementary material",
    "fn": "footnotes",
    "fn-group": "footnotes",
    "ack": "acknowledgements",
    "ref-list": "references",
}
INTENDED_XREFS = {"bibr", "fig", "table", "supplementary-material", "video", "media"}


def tokens(text: str, numbers: bool = True) -> Counter:
    found = _TOKEN.findall(text.lower())
    return Counter(found if numbers else (t for t in found if not t.isdigit()))


def covered(reference: Counter, candidate: Counter) -> tuple[int, int]:
    """(reference tokens also in the candidate, counts clipped; reference tokens)."""
    return sum(min(c, candidate[t]) for t, c in reference.items()), sum(reference.values())


def paragraph_kinds(path: Path) -> list[tuple[str, Counter]]:
    """For each ``//body//p`` (pubmed_parser's selection, same order): why pmc-data drops it
    (``""`` if it keeps it), and the tokens of its direct citation/figure/table xrefs, which
    pubmed_parser's ``stringify_children`` includes and pmc-data removes on purpose."""
    # The pmc-data reader's drop rules, imported here so that they stay in step.
    from pmc_data.sources.jats import DROPPED_SECTION_TITLE, DROPPED_SECTION_TYPES

    root = etree.parse(str(path), _SAFE).getroot()
    kinds = []
    for p in root.xpath("//body//p"):
        reason = ""
        for ancestor in p.iterancestors():
            name = _local(ancestor.tag)
            if name in DROPPED_CONTAINERS:
                reason = DROPPED_CONTAINERS[name]
            elif name == "sec":
                title = ancestor.find("title")
                heading = " ".join("".join(title.itertext()).split()) if title is not None else ""
                kind = ancestor.get("sec-type")
                if kind in DROPPED_SECTION_TYPES or DROPPED_SECTION_TITLE.match(heading):
                    reason = f"section: {kind or heading}"
        xrefs = Counter()
        for child in p:
            if _local(child.tag) == "xref" and child.get("ref-type") in INTENDED_XREFS:
                xrefs += tokens(child.text or "", numbers=False)
        kinds.append((reason, xrefs))
    return kinds


@dataclass
class Recall:
    """Summed per-article fractions, and what the diagnostics need."""

    articles: int = 0
    forward_raw: float = 0.0
    forward_words: float = 0.0
    forward_kept: float = 0.0
    reverse_raw: float = 0.0
    reverse_words: float = 0.0
    dropped: Counter = field(default_factory=Counter)  # reason -> pubmed_parser tokens
    total_tokens: int = 0
    missing: Counter = field(default_factory=Counter)  # kept-paragraph tokens pmc-data lacks
    lossy: list[tuple[str, list[str], str]] = field(default_factory=list)
    reverse_extra: Counter = field(default_factory=Counter)

    def mean(self, name: str) -> float:
        return getattr(self, name) / self.articles if self.articles else float("nan")


def _fraction(pair: tuple[int, int]) -> float:
    return pair[0] / pair[1] if pair[1] else 1.0


def recall(corpus: Corpus, ours: Parse, peer: Parse) -> Recall:
    result = Recall()
    seen_bases: set[str] = set()
    for path, base, text, theirs in zip(
        corpus.paths, corpus.bases, ours.texts, peer.texts, strict=True
    ):
        if text is None or theirs is None:
            continue
        result.articles += 1
        mine_raw, mine_words = tokens(text), tokens(text, numbers=False)
        paragraphs = theirs["paragraphs"]
        body_raw, body_words = Counter(), Counter()
        for paragraph in paragraphs:
            body_raw.update(tokens(paragraph))
            body_words.update(tokens(paragraph, numbers=False))
        result.forward_raw += _fraction(covered(body_raw, mine_raw))
        result.forward_words += _fraction(covered(body_words, mine_words))

        kinds = paragraph_kinds(path)
        if len(kinds) != len(paragraphs):
            raise RuntimeError(
                f"{path.name}: {len(kinds)} //body//p, pubmed_parser {len(paragraphs)}"
            )
        kept = Counter()
        first_of_base = base not in seen_bases
        seen_bases.add(base)
        for paragraph, (reason, xrefs) in zip(paragraphs, kinds, strict=True):
            words = tokens(paragraph, numbers=False)
            result.total_tokens += sum(words.values())
            if reason:
                result.dropped[reason] += sum(words.values())
                continue
            words = words - xrefs
            kept += words
            hit, total = covered(words, mine_words)
            if first_of_base and hit < total:
                urls = Counter()
                for url in _URL.findall(paragraph):
                    urls += tokens(url, numbers=False)
                lost = sorted((words - mine_words) - urls)
                if lost:
                    flat = " ".join(paragraph.split())
                    at = max(0, flat.lower().find(lost[0]) - 80)
                    result.lossy.append((base, lost, flat[at : at + 200]))
        result.forward_kept += _fraction(covered(kept, mine_words))
        result.missing += kept - mine_words

        everything = " ".join([theirs["title"], theirs["abstract"], *paragraphs])
        result.reverse_raw += _fraction(covered(mine_raw, tokens(everything)))
        peer_words = tokens(everything, numbers=False)
        result.reverse_words += _fraction(covered(mine_words, peer_words))
        result.reverse_extra += mine_words - peer_words
    return result


# --- report -----------------------------------------------------------------------------------


def versions(python: Path) -> str:
    ours = {n: metadata.version(n) for n in ("pmc-data", "lxml")}
    query = (
        "import importlib.metadata as m, platform; "
        "print(m.version('pubmed_parser'), m.version('lxml'), platform.python_version())"
    )
    theirs = subprocess.run([str(python), "-c", query], capture_output=True, text=True, check=True)
    pubmed, lxml, py = theirs.stdout.split()
    return (
        f"pmc-data {ours['pmc-data']} (lxml {ours['lxml']}, Python {platform.python_version()}); "
        f"pubmed_parser {pubmed} (lxml {lxml}, Python {py})"
    )


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip() + ", "
                break
    return (
        f"machine: {platform.machine()}, {cpu}{psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    )


def wait_for_quiet(pattern: str, limit: float) -> None:
    """Waits (up to ``limit`` seconds) while another benchmark matching ``pattern`` runs."""
    me = psutil.Process().pid
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if proc.info["pid"] != me and re.search(pattern, line):
                busy.append(line[:80])
        if not busy:
            return
        print(f"waiting: another benchmark runs ({busy[0]})", flush=True)
        time.sleep(30)
    print("warning: still not quiet, timing anyway", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--scale", type=int, default=10, help="growth factor for the memory run")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES, help="real JATS articles")
    parser.add_argument("--pubmed-parser-python", help="an interpreter with pubmed_parser")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats", type=int, default=3,
        help="timed passes of each tool over the corpus, interleaved chunk by chunk",
    )  # fmt: skip
    parser.add_argument(
        "--chunks", type=int, default=20, help="chunks per pass (each tool alternates)"
    )
    parser.add_argument(
        "--unit-size", default="8MiB",
        help="the memory run's --unit-size, the same for both sizes: a build gives a small "
        "input smaller units (input / 32), so without it the 10x run would also measure "
        "units growing to their cap",
    )  # fmt: skip
    parser.add_argument(
        "--cold-caches", action="store_true",
        help="empty pmc-data's per-content caches before each article: the corpus repeats "
        "its few real articles, which a cache of figure-mention brackets profits from as a "
        "real corpus would only in part",
    )  # fmt: skip
    parser.add_argument(
        "--wait-for", default=r"benchmarks/dedup|datatrove",
        help="regex of other benchmarks' command lines to wait out before timing ('' to skip)",
    )  # fmt: skip
    args = parser.parse_args()
    if not args.fixtures.is_dir():
        sys.exit(f"{args.fixtures} is missing: it holds the real JATS articles to replicate")
    python = peer_python(args.pubmed_parser_python)
    bases = load_bases(args.fixtures)

    with tempfile.TemporaryDirectory(prefix="pmc-papers-") as tmp:
        tmp = Path(tmp)
        corpus = generate(tmp / "small", args.articles, bases, args.seed, 1_000_000)
        counts = Counter(corpus.bases)
        mix = ", ".join(f"{name} x{counts[name]}" for name in sorted(counts))
        print(
            f"corpus: {args.articles:,} JATS articles, {corpus.bytes / 1e6:.0f} MB, "
            f"copies of {len(bases)} real eLife articles ({mix})"
        )
        print(f"versions: {versions(python)}")
        print(machine())
        if args.cold_caches:
            print("pmc-data's per-content caches emptied before each article (--cold-caches)")
        if args.wait_for:
            wait_for_quiet(args.wait_for, 20 * 60)

        ours_program = OURS.replace("COLD_CACHES = False", f"COLD_CACHES = {args.cold_caches}")
        workers = [
            Worker("pmc-data", Path(sys.executable), ours_program, corpus, tmp),
            Worker("pubmed_parser", python, PEER, corpus, tmp),
        ]
        ours, peer = timed_runs(workers, len(corpus.paths), args.repeats, args.chunks)
        scores = recall(corpus, ours, peer)

        print(
            "\n| tool | articles | seconds | articles/s (1 core) | CPU s "
            "| recall, all tokens | recall, no numbers |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        rows = (
            (ours, "forward_raw", "forward_words"),
            (peer, "reverse_raw", "reverse_words"),
        )
        for run, raw, words in rows:
            print(
                f"| {run.tool} | {run.done:,} | {run.seconds:.2f} | {run.rate:,.1f} | "
                f"{run.cpu_seconds:.2f} | {scores.mean(raw):.4f} | "
                f"{scores.mean(words):.4f} |"
            )
        for run in (ours, peer):
            if run.errors:
                print(f"{run.tool}: {len(run.errors)} files failed, e.g. {run.errors[0]}")
        ratio = ours.rate / peer.rate
        repeat_ratios = ", ".join(
            f"{b / a:.2f}" for a, b in zip(ours.repeats, peer.repeats, strict=True)
        )
        print(
            f"\nratio: pmc-data {ratio:.2f}x pubmed_parser's articles/s (target at least 3x): "
            f"each chunk's fastest of {args.repeats} repeats, interleaved chunk by chunk; "
            f"whole repeats: {repeat_ratios}; per CPU second "
            f"{peer.cpu_seconds / ours.cpu_seconds:.2f}x"
        )
        print(
            "recall, pmc-data row: share of pubmed_parser's body-paragraph words "
            "(parse_pubmed_paragraph) found in pmc-data's text; pubmed_parser row: share of "
            "pmc-data's words found in pubmed_parser's title + abstract + paragraphs; mean over "
            f"{scores.articles:,} articles, bag of words with clipped counts."
        )
        print(
            "recall of what pmc-data means to keep (pubmed_parser's paragraphs outside "
            "figures, tables, sub-articles, supplementary material, footnotes and dropped "
            "sections, less citation/figure/table xref text, no numbers): "
            f"{scores.mean('forward_kept'):.4f}"
        )
        total = scores.total_tokens or 1
        dropped = ", ".join(
            f"{reason} {count / total:.1%}" for reason, count in scores.dropped.most_common()
        )
        print(
            "pubmed_parser body-paragraph words (no numbers) in what pmc-data drops on purpose: "
            f"{sum(scores.dropped.values()) / total:.1%} ({dropped or 'none'})"
        )
        top = ", ".join(f"{w} {c:,}" for w, c in scores.missing.most_common(15))
        print(f"kept-paragraph words pmc-data lacks, most frequent (all articles): {top or 'none'}")
        extra = ", ".join(f"{w} {c:,}" for w, c in scores.reverse_extra.most_common(15))
        print(
            "pmc-data words pubmed_parser lacks, most frequent (it reads only //body//p: no "
            f"appendices, section titles or box titles): {extra or 'none'}"
        )
        if scores.lossy:
            print(
                "kept paragraphs of the unperturbed originals with words missing from pmc-data's "
                "text (URLs aside): missing words | context in pubmed_parser's paragraph"
            )
            for base, lost, text in scores.lossy[:12]:
                print(f"- {base}: {', '.join(lost)} | ...{text}...")
            if len(scores.lossy) > 12:
                print(f"- ... {len(scores.lossy) - 12} more")

        if args.scale > 1:
            big = generate(tmp / "big", args.articles * args.scale, bases, args.seed + 1, 5_000_000)
            small_run = build(corpus, tmp / "out-small", tmp / "build-small.log", args.unit_size)
            big_run = build(big, tmp / "out-big", tmp / "build-big.log", args.unit_size)
            print(
                f"\nmemory, pmc-data build medc_k/pmc_oa, 1 worker, --unit-size "
                f"{args.unit_size}: {small_run.articles:,} "
                f"articles ({corpus.bytes / 1e6:.0f} MB) -> peak {small_run.peak / 2**20:,.0f} "
                f"MiB ({small_run.seconds:.1f} s); {big_run.articles:,} articles "
                f"({big.bytes / 1e6:.0f} MB) -> peak {big_run.peak / 2**20:,.0f} MiB "
                f"({big_run.seconds:.1f} s); growth {big_run.peak / small_run.peak:.2f}x for "
                f"{args.scale}x input"
            )
            for run in (small_run, big_run):
                print(
                    f"  {run.articles:,} articles: {run.rows:,} rows out, "
                    f"{run.articles / run.seconds:,.1f} articles/s end to end, removed by step: "
                    f"{run.removed or 'none'}"
                )


if __name__ == "__main__":
    main()
