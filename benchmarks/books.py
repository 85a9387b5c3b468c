"""Textbook PDFs: pmc-data's books reader and cleaning against pymupdf4llm and pypdf (issue 4).

    python benchmarks/books.py                       # a ~300-page book, 8 OCR pages, 3 runs
    python benchmarks/books.py --pages 600 --ocr-pages 10 --repeats 5
    python benchmarks/books.py --quick               # a smoke run: ~40 pages, 2 OCR pages, 1 run

The book is typeset by ``pmc_data.textbook_pdf`` (title, copyright and contents pages, running
headers, page numbers, figure captions, hyphenated line ends, an index), so the body text set on
every page is known. Its chapters are the four chapters of examples/books/handbook.json,
repeated and permuted (seeded RNG) into at least 12 renamed chapters, until the book has about
``--pages`` pages; every repeated paragraph has its words shuffled within its sentences, so no
two pages read the same (the furniture step finds headers by repetition, and repeated body
lines would be a property of the benchmark, not of books).

Text layer, each tool in its own subprocess (one process; all subprocesses pinned to the same
core, ``--cpu``), timing only its own conversion of the book: imports, start-up and a first,
untimed conversion of the 20-page handbook (one-time costs: lazy imports such as pandas through
pyarrow, pymupdf4llm's layout model) are not counted, and are shown apart:

- pmc-data: the ``pdf_books`` reader (``BooksArgs(license_policy=None, ocr="off")``: ``plan`` and
  ``read``), then ``book_furniture``, ``book_matter`` and ``clean_book_text`` (the per-page
  pipeline; ``book_chapters`` only joins pages).
- pymupdf4llm (benchmarks/.venv-books, created on first use): ``to_markdown(path,
  page_chunks=True)``, the chunk texts as they are; twice, with its default (the ``pymupdf.layout``
  ONNX layout model, which PyMuPDF 2 bundles and uses whenever it can import it) and with
  ``use_layout(False)`` (its rule-based ``pymupdf_rag`` path, pymupdf4llm before the model).
- pypdf (same environment): ``PdfReader(path)`` and ``page.extract_text()`` per page.

Rounds: every tool once per round, ``--repeats`` rounds, median seconds. Similarity: per body
page, ``difflib.SequenceMatcher(None, source, output, autojunk=False).ratio()`` on text with
whitespace collapsed, against the body text set on the page (captions, headers and page numbers
are not body text); mean over body pages, a page a tool dropped scoring 0.

OCR: ``--ocr-pages`` body pages spread over the book are rendered to greyscale PNG at 300 DPI
with PyMuPDF, and a copy of the book is typeset with those pages replaced by the same 300-DPI
image (an image-only page, as a scan is). (a) the bare ``tesseract IMG stdout -l eng --dpi 300``,
once per page, in sequence, timing each command; (b) pmc-data's
``extract_page(page, OcrOptions(mode="always", dpi=300))`` on the scanned copy's pages (Tesseract
through PyMuPDF, which renders the page at that DPI), in a subprocess timing its loop.
``OMP_THREAD_LIMIT=1`` for both (Tesseract otherwise runs OpenMP threads). Overhead is
pmc-data's seconds / Tesseract's - 1. Similarity as above, on each tool's raw page text.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil
from measure import measure

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HANDBOOK = ROOT / "examples" / "books" / "handbook.json"
PEER_VENV = HERE / ".venv-books"
# pymupdf4llm 2.x is an empty package: its code ships inside PyMuPDF 2 (`import pymupdf4llm`
# still works), so PyMuPDF is named too.
PEER_PACKAGES = ("pymupdf4llm", "pymupdf", "pypdf")
PEER_CHECK = "import pymupdf4llm, pypdf; pymupdf4llm.to_markdown, pypdf.PdfReader"
OCR_DPI = 300
CHAPTERS_MIN, CHAPTERS_MAX = 12, 24  # the contents page holds about 26 lines
CHARS_PER_PAGE = 2390  # of paragraph text (captions included), as typeset_book's chapters set

# Every tool script defines convert(path) -> (texts, extra): one text per PDF page, in order,
# and a dict of extra figures; this tail converts a small warm-up book first (one-time costs:
# lazy imports, a layout model loaded), then times the book and writes the result.
TAIL = textwrap.dedent(
    """
    path, out, warm = sys.argv[1], sys.argv[2], sys.argv[-1]
    warmup = time.perf_counter()
    convert(warm)
    warmup = time.perf_counter() - warmup
    wall, cpu = time.perf_counter(), time.process_time()
    texts, extra = convert(path)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    with open(out, "w") as handle:
        extra["warmup_seconds"] = warmup
        json.dump({"seconds": wall, "cpu_seconds": cpu, "texts": texts, "extra": extra}, handle)
    """
)

OURS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path

    from pmc_data.sources.books import BooksArgs, PdfBooks
    from pmc_data.steps.books import BookFurniture, BookMatter, CleanBookText

    reader = PdfBooks(BooksArgs(license_policy=None, ocr="off"), "medc_k", "books")
    reader.bind({})
    steps = [BookFurniture(), BookMatter(), CleanBookText()]


    def convert(path):
        started = time.perf_counter()
        (unit,) = reader.plan(str(Path(path).parent), 1 << 30)
        result = reader.read(unit)
        read = time.perf_counter() - started
        batch = result.table
        for step in steps:
            batch = step.apply(batch).kept
        texts = [""] * result.items  # a page a step dropped stays empty
        for meta, text in zip(batch.column("metadata").to_pylist(),
                              batch.column("text").to_pylist()):
            texts[int(meta["pages"]) - 1] = text
        return texts, {"read_seconds": read, "rejects": len(result.errors)}
    """
)

PYMUPDF4LLM = textwrap.dedent(
    """
    import json, sys, time

    import pymupdf4llm

    if "rules" in sys.argv[3:]:
        pymupdf4llm.use_layout(False)


    def convert(path):
        chunks = pymupdf4llm.to_markdown(path, page_chunks=True)
        return [chunk["text"] for chunk in chunks], {}
    """
)

PYPDF = textwrap.dedent(
    """
    import json, sys, time

    import pypdf


    def convert(path):
        reader = pypdf.PdfReader(path)
        return [page.extract_text() for page in reader.pages], {}
    """
)

OURS_OCR = textwrap.dedent(
    """
    import os

    os.environ["OMP_THREAD_LIMIT"] = "1"  # before MuPDF loads Tesseract

    import json, sys, time

    import pymupdf

    from pmc_data.sources.pdf import OcrOptions, extract_page

    path, out, numbers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    options = OcrOptions(mode="always", dpi=int(sys.argv[4]))
    doc = pymupdf.open(path)
    texts, seconds, methods = [], [], []
    wall, cpu = time.perf_counter(), time.process_time()
    for number in numbers:
        started = time.perf_counter()
        page = extract_page(doc.load_page(number - 1), options)
        seconds.append(time.perf_counter() - started)
        texts.append(page.text)
        methods.append(page.method)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {"seconds": wall, "cpu_seconds": cpu, "texts": texts,
              "extra": {"page_seconds": seconds, "methods": methods}}
    with open(out, "w") as handle:
        json.dump(result, handle)
    """
)


# --- the book ---------------------------------------------------------------------------------

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")
_ALPHA = re.compile(r"[A-Za-z]+")


def _shuffle_words(text: str, rng: random.Random) -> str:
    """The purely alphabetic words of each sentence shuffled among themselves; the rest stays."""
    sentences = re.split(r"(?<=[.;:]) ", text)
    out = []
    for sentence in sentences:
        parts = re.split(r"(\s+)", sentence)
        slots = [i for i, part in enumerate(parts) if _ALPHA.fullmatch(part)]
        words = [parts[i] for i in slots]
        rng.shuffle(words)
        for i, word in zip(slots, words, strict=True):
            parts[i] = word
        out.append("".join(parts))
    return " ".join(out)


def make_book(chars_per_page: float, pages: int, seed: int):
    """A Book of about ``pages`` pages from the handbook's chapters, and its chapter count."""
    from pmc_data.textbook_pdf import Book, Chapter, is_caption, load_book

    handbook, _ = load_book(HANDBOOK)
    rng = random.Random(seed)
    body_chars = max(1.0, pages - 4) * chars_per_page  # title, copyright, contents, index
    count = min(CHAPTERS_MAX, max(CHAPTERS_MIN, round(pages / 25)))
    budget = body_chars / count
    seen: set[str] = set()
    chapters = []
    for number in range(count):
        order = list(range(len(handbook.chapters)))
        rng.shuffle(order)
        first = handbook.chapters[order[0]]
        part = _ROMAN[number // len(order) % len(_ROMAN)]
        title = f"{first.title} {part}"
        paragraphs: list[str] = []
        size, figures, tables, copy = 0, 0, 0, 0
        while size < budget:
            source = handbook.chapters[order[copy % len(order)]]
            copy += 1
            for paragraph in source.paragraphs:
                if size >= budget:
                    break
                label = ""
                if is_caption(paragraph):  # renumbered within the chapter: "Figure 7.3 ..."
                    kind, _, paragraph = paragraph.split(" ", 2)
                    if kind == "Figure":
                        figures += 1
                    else:
                        tables += 1
                    label = f"{kind} {number + 1}.{figures if kind == 'Figure' else tables} "
                if paragraph in seen:
                    paragraph = _shuffle_words(paragraph, rng)
                else:
                    seen.add(paragraph)
                paragraph = label + paragraph  # a caption's label is never shuffled away
                paragraphs.append(paragraph)
                size += len(paragraph)
        chapters.append(Chapter(title, paragraphs))
    return Book(handbook.title, chapters, handbook.authors, handbook.index_terms), count


def typeset_book(pages: int, seed: int):
    """The book of about ``pages`` pages and its Layout: sized by ``CHARS_PER_PAGE``, then
    corrected once by the page count the first attempt gave."""
    from pmc_data.textbook_pdf import typeset

    chars_per_page = CHARS_PER_PAGE
    book, _ = make_book(chars_per_page, pages, seed)
    layout = typeset(book)
    if abs(len(layout.pages) - pages) > max(2, pages * 0.02):
        chars_per_page *= max(1, pages - 4) / max(1, len(layout.pages) - 4)
        book, _ = make_book(chars_per_page, pages, seed)
        layout = typeset(book)
    return book, layout


# --- scoring ----------------------------------------------------------------------------------


def collapse(text: str) -> str:
    return " ".join(text.replace("\u2029", " ").split())


def similarity(source: str, output: str) -> float:
    return difflib.SequenceMatcher(None, source, output, autojunk=False).ratio()


def mean_similarity(sources: dict[int, str], texts: list[str]) -> float:
    """Mean over ``sources`` (page number -> collapsed body text) against ``texts`` by page."""
    scores = []
    for number, source in sources.items():
        output = texts[number - 1] if number - 1 < len(texts) else ""
        scores.append(similarity(source, collapse(output or "")))
    return statistics.fmean(scores) if scores else float("nan")


# --- running ----------------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    python: Path
    program: str
    args: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    extra: list[dict] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_seconds)


def run_tool(tool: Tool, pdf: Path, work: Path, env: dict[str, str]) -> None:
    stem = "run-" + re.sub(r"\W+", "-", tool.name).strip("-")
    script, result = work / f"{stem}.py", work / f"{stem}.json"
    script.write_text(tool.program)
    command = [str(tool.python), str(script), str(pdf), str(result), *tool.args]
    with _environment(env):
        _, peak = measure(command, ROOT, work / f"{stem}.log")
    out = json.loads(result.read_text())
    tool.seconds.append(out["seconds"])
    tool.cpu_seconds.append(out["cpu_seconds"])
    tool.peaks.append(peak)
    tool.texts = out["texts"]
    tool.extra.append(out["extra"])


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """``os.environ`` updated with ``env`` for the duration (measure() passes it on)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def tesseract_pages(images: list[Path], env: dict[str, str]) -> tuple[float, list[str]]:
    """Seconds of the bare ``tesseract`` commands, one per image in turn, and their texts."""
    total, texts = 0.0, []
    for image in images:
        command = ["tesseract", str(image), "stdout", "-l", "eng", "--dpi", str(OCR_DPI)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, env={**os.environ, **env})
        total += time.perf_counter() - started
        if done.returncode:
            sys.exit(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]!r}")
        texts.append(done.stdout.decode("utf-8", "replace"))
    return total, texts


def peer_python(given: str | None) -> Path:
    """The interpreter that runs the peers: ``given``, or a venv created on first use."""
    python = Path(given) if given else PEER_VENV / "bin" / "python"
    if not given and not python.exists():
        print(f"creating {PEER_VENV} ({', '.join(PEER_PACKAGES)})", flush=True)
        subprocess.run(["python3", "-m", "venv", str(PEER_VENV)], check=True)
        (PEER_VENV / ".gitignore").write_text("*\n")
        pip = [str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES]
        install = subprocess.run(pip, capture_output=True, text=True)
        if install.returncode:
            sys.exit(f"pip install {' '.join(PEER_PACKAGES)} failed:\n{install.stderr[-3000:]}")
    check = subprocess.run([str(python), "-c", PEER_CHECK], capture_output=True, text=True)
    if check.returncode:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        sys.exit(f"{python} cannot run the peers ({last}); pip install {' '.join(PEER_PACKAGES)}")
    return python


# --- report -----------------------------------------------------------------------------------


def versions(python: Path) -> str:
    import pymupdf

    query = (
        "import importlib.metadata as m, platform, pymupdf; "
        "print(platform.python_version(), m.version('pymupdf'), pymupdf.VersionFitz, "
        "m.version('pymupdf4llm'), m.version('pypdf'))"
    )
    theirs = subprocess.run([str(python), "-c", query], capture_output=True, text=True, check=True)
    py, mupdf, fitz, llm, pypdf = theirs.stdout.split()
    tesseract = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
    first = (tesseract.stdout or tesseract.stderr).strip().splitlines()[0]
    return (
        f"pmc-data {metadata.version('pmc-data')} (PyMuPDF {metadata.version('pymupdf')}, "
        f"MuPDF {pymupdf.VersionFitz}, Python {platform.python_version()}); "
        f"peers: pymupdf4llm {llm} (the code inside PyMuPDF {mupdf}, MuPDF {fitz}), "
        f"pypdf {pypdf}, Python {py}; {first}"
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


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def pick_pages(layout, count: int) -> list[int]:
    """``count`` body pages spread over the book, chapter openings left out."""
    starts = {start for start, _ in layout.chapter_pages}
    body = [p.number for p in layout.pages if p.kind == "body" and p.number not in starts]
    if count >= len(body):
        return body
    step = len(body) / count
    return [body[int(step * i + step / 2)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=300, help="pages of the generated book")
    parser.add_argument("--ocr-pages", type=int, default=8, help="pages OCRed (0 to skip)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (median)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 pages, 2 OCR, 1 run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cpu", type=int, default=None,
        help="core every timed process is pinned to (default: the last one; -1: no pinning)",
    )  # fmt: skip
    parser.add_argument("--peer-python", help="an interpreter with pymupdf4llm and pypdf")
    parser.add_argument("--keep", action="store_true", help="keep the PDFs and outputs")
    args = parser.parse_args()
    if args.quick:
        args.pages, args.ocr_pages, args.repeats = 40, min(args.ocr_pages, 2), 1
    python = peer_python(args.peer_python)
    ocr_env = {"OMP_THREAD_LIMIT": "1"}
    if args.ocr_pages and not shutil.which("tesseract"):
        sys.exit("tesseract is not installed (apt-get install tesseract-ocr); or --ocr-pages 0")

    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if args.cpu is None else args.cpu
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})  # inherited by every subprocess and tesseract

    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"versions: {versions(python)}")
    print(machine() + (f"; timed processes pinned to core {cpu}" if cpu >= 0 else ""))
    print(f"{load()} at start")

    work = Path(tempfile.mkdtemp(prefix="pmc-books-"))
    try:
        report(args, python, work, ocr_env)
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(args: argparse.Namespace, python: Path, work: Path, ocr_env: dict[str, str]) -> None:
    from pmc_data.textbook_pdf import load_book, typeset

    started = time.perf_counter()
    book, layout = typeset_book(args.pages, args.seed)
    text_dir = work / "text"
    text_dir.mkdir()
    pdf = text_dir / "book.pdf"
    pdf.write_bytes(layout.pdf)
    pages = len(layout.pages)
    kinds: dict[str, int] = {}
    for page in layout.pages:
        kinds[page.kind] = kinds.get(page.kind, 0) + 1
    sources = {p.number: collapse(p.text) for p in layout.pages if p.kind == "body"}
    print(
        f"book: {pages} pages ({', '.join(f'{n} {k}' for k, n in kinds.items())}), "
        f"{len(book.chapters)} chapters, {len(layout.pdf) / 1e6:.1f} MB, "
        f"{sum(map(len, sources.values())) / 1e3:,.0f}k characters of body text "
        f"(typeset in {time.perf_counter() - started:.1f} s)"
    )

    # The warm-up book, alone in its folder (pmc-data's reader plans a folder): the handbook.
    warm_dir = work / "warm"
    warm_dir.mkdir()
    warm = warm_dir / "handbook.pdf"
    warm.write_bytes(typeset(load_book(HANDBOOK)[0]).pdf)
    tools = [
        Tool("pmc-data: read + furniture + matter + clean", Path(sys.executable), OURS + TAIL),
        Tool("pymupdf4llm, default (layout model)", python, PYMUPDF4LLM + TAIL, ["layout"]),
        Tool("pymupdf4llm, use_layout(False)", python, PYMUPDF4LLM + TAIL, ["rules"]),
        Tool("pypdf extract_text", python, PYPDF + TAIL),
    ]
    for tool in tools:
        tool.args.append(str(warm))
    for round_ in range(args.repeats):
        for tool in tools:
            run_tool(tool, pdf, work, {})
        print(f"text round {round_ + 1}/{args.repeats} done ({load()})", flush=True)
    for tool in tools:
        if len(tool.texts) != pages:
            sys.exit(f"{tool.name}: {len(tool.texts)} page texts for {pages} pages")

    ocr = None
    if args.ocr_pages:
        ocr = ocr_run(args, layout, book, work, ocr_env, sources)

    ours, layout_llm, rules_llm, pypdf = tools
    scores = {tool.name: mean_similarity(sources, tool.texts) for tool in tools}
    print(f"\n{load()} at the end")
    print(
        f"\n### Text layer: {pages}-page book, median of {args.repeats} run(s), one process each\n"
    )
    print(
        "| tool | seconds | pages/s | CPU s | warm-up s (untimed) | peak MiB "
        "| similarity to body text |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for tool in tools:
        warmup = statistics.median(e["warmup_seconds"] for e in tool.extra)
        print(
            f"| {tool.name} | {tool.median:.3f} | {pages / tool.median:,.1f} | {tool.cpu:.3f} | "
            f"{warmup:.2f} | {max(tool.peaks) / 2**20:,.0f} | {scores[tool.name]:.4f} |"
        )
    read = statistics.median(e["read_seconds"] for e in ours.extra)
    print(
        f"\npmc-data: reader {read:.3f} s, the three steps {ours.median - read:.3f} s "
        f"(medians); {sum(not t for t in ours.texts)} pages dropped by book_matter, "
        f"{ours.extra[-1]['rejects']} rejects"
    )
    rate = pages / ours.median
    for peer, target in ((rules_llm, 2), (layout_llm, 2), (pypdf, 5)):
        ratio = rate / (pages / peer.median)
        better = scores[ours.name] >= scores[peer.name]
        print(
            f"- ours / {peer.name}: **{ratio:.2f}x** pages/s (target at least {target}x: "
            f"{'met' if ratio >= target else 'NOT met'}); similarity {scores[ours.name]:.4f} vs "
            f"{scores[peer.name]:.4f} ({'equal or better' if better else 'WORSE'})"
        )
    print(
        "similarity: difflib.SequenceMatcher(autojunk=False).ratio() of whitespace-collapsed "
        f"text, mean over {len(sources)} body pages, against the body text set on each page "
        "(peers' page texts as they come, with headers, page numbers, captions, markdown)"
    )

    if ocr:
        tess_seconds, tess_scores, ours_ocr, ours_scores, numbers = ocr
        tess = statistics.median(tess_seconds)
        mine = ours_ocr.median
        n = len(numbers)
        print(
            f"\n### OCR: {n} scanned body pages, {OCR_DPI} DPI, median of {args.repeats} run(s)\n"
        )
        print("| tool | seconds | pages/s | s/page | similarity to body text |")
        print("|---|---:|---:|---:|---:|")
        print(
            f"| tesseract IMG stdout -l eng --dpi {OCR_DPI} (per page image) | {tess:.2f} | "
            f"{n / tess:.3f} | {tess / n:.2f} | {statistics.fmean(tess_scores):.4f} |"
        )
        print(
            f"| pmc-data extract_page(OcrOptions(mode='always', dpi={OCR_DPI})) | {mine:.2f} | "
            f"{n / mine:.3f} | {mine / n:.2f} | {statistics.fmean(ours_scores):.4f} |"
        )
        overhead = mine / tess - 1
        print(
            f"\n- overhead: **{overhead:+.1%}** (target at most +15%: "
            f"{'met' if overhead <= 0.15 else 'NOT met'}); pages {numbers}; "
            f"OMP_THREAD_LIMIT=1 for both; all runs: tesseract "
            f"{', '.join(f'{s:.2f}' for s in tess_seconds)} s, pmc-data "
            f"{', '.join(f'{s:.2f}' for s in ours_ocr.seconds)} s"
        )


def ocr_run(args, layout, book, work: Path, env: dict[str, str], sources: dict[int, str]):
    """Tesseract's and pmc-data's seconds (all rounds), similarities and the pages OCRed."""
    import pymupdf

    from pmc_data.textbook_pdf import typeset

    numbers = pick_pages(layout, args.ocr_pages)
    images = []
    with pymupdf.open(stream=layout.pdf, filetype="pdf") as doc:
        for number in numbers:
            # The pixels _rasterise puts in the scanned copy: greyscale, at the OCR DPI.
            pixmap = doc[number - 1].get_pixmap(dpi=OCR_DPI, colorspace=pymupdf.csGRAY)
            image = work / f"page-{number:04d}.png"
            pixmap.save(str(image))
            images.append(image)
    scanned = typeset(book, scanned=set(numbers), scan_dpi=OCR_DPI)
    if len(scanned.pages) != len(layout.pages):
        sys.exit("the scanned copy has a different page count")
    scan_dir = work / "scanned"
    scan_dir.mkdir()
    scan_pdf = scan_dir / "book.pdf"
    scan_pdf.write_bytes(scanned.pdf)

    tool = Tool("pmc-data OCR", Path(sys.executable), OURS_OCR, [json.dumps(numbers), str(OCR_DPI)])
    tess_seconds: list[float] = []
    tess_texts: list[str] = []
    for round_ in range(args.repeats):
        seconds, tess_texts = tesseract_pages(images, env)
        tess_seconds.append(seconds)
        run_tool(tool, scan_pdf, work, env)
        print(f"OCR round {round_ + 1}/{args.repeats} done ({load()})", flush=True)
    if any(m != "ocr" for m in tool.extra[-1]["methods"]):
        sys.exit(f"pmc-data did not OCR every page: {tool.extra[-1]['methods']}")
    tess_scores = [
        similarity(sources[n], collapse(t)) for n, t in zip(numbers, tess_texts, strict=True)
    ]
    ours_scores = [
        similarity(sources[n], collapse(t)) for n, t in zip(numbers, tool.texts, strict=True)
    ]
    return tess_seconds, tess_scores, tool, ours_scores, numbers


if __name__ == "__main__":
    main()
