# Two commands do everything on a fresh machine:
#   make demo   set up, build the demo dataset, load it back with `datasets`
#   make test   set up, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup tesseract cxx demo test lint bench clean

setup: $(STAMP)

# torch is pinned and installed first: an unpinned torch (asked for by transformers) would pull
# several GB of CUDA packages on a machine that has none. Set TORCH= to keep your own build.
TORCH ?= torch==2.13.0

$(STAMP): pyproject.toml
	@command -v tesseract >/dev/null || $(MAKE) --no-print-directory tesseract
	@command -v g++ >/dev/null || command -v c++ >/dev/null || $(MAKE) --no-print-directory cxx
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(if $(TORCH),$(BIN)/pip install --quiet "$(TORCH)")
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

# OCR of scanned book pages needs the tesseract binary (a system package, not a pip one).
tesseract:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq tesseract-ocr >/dev/null; \
	else \
		echo "note: tesseract not found; OCR tests will be skipped." \
			"Install it with: sudo apt-get install tesseract-ocr (or brew install tesseract)"; \
	fi

# torch.compile (`model.compile: true` in the trainer) generates C++ for the CPU.
cxx:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq g++ >/dev/null; \
	else \
		echo "note: no C++ compiler found; the torch.compile test will be skipped." \
			"Install one with: sudo apt-get install g++"; \
	fi

demo: setup
	$(BIN)/pmc-data build demo --input docs=examples/demo \
		--input medqa_test=examples/eval/medqa_test_sample.jsonl --output build/demo --overwrite
	$(BIN)/pmc-data inspect build/demo
	$(BIN)/pmc-data build medc_k/pmc_oa --input pmc=examples/papers --output build/papers \
		--overwrite --set steps.length_filter.min_words=50
	$(BIN)/pmc-data inspect build/papers
	$(BIN)/pmc-data build medc_i/rationale_extractive --output build/instructions --overwrite \
		--input medqa=examples/qa/medqa_train_sample.jsonl \
		--input medmcqa=examples/qa/medmcqa_train_sample.jsonl \
		--input pubmedqa=examples/qa/pubmedqa_sample.json \
		--input medqa_test=examples/eval/medqa_test_sample.jsonl
	$(BIN)/pmc-data inspect build/instructions
	$(BIN)/python -m pmc_data.textbook_pdf examples/books/handbook.json build/books_src \
		--scanned 6 --two-column 3
	$(BIN)/pmc-data build medc_k/books --input books=build/books_src \
		--input book_meta=build/books_src/books.csv --output build/books --overwrite \
		$(if $(shell command -v tesseract),,--set read.0.ocr=off)
	$(BIN)/pmc-data inspect build/books
	$(BIN)/python -m pmc_data.demo build/demo build/papers build/instructions build/books
	# a few CPU steps of a tiny LLaMA: continued pretraining on books:papers:general = 15:4:1,
	# then instruction tuning (OMP_NUM_THREADS=1: a 2-core machine shared with other jobs)
	OMP_NUM_THREADS=1 $(BIN)/python -m trainer --config trainer/configs/tiny_cpu.yaml \
		checkpoint.resume=false data.sources.books.path=build/books \
		data.sources.books.weight=15 data.sources.papers.weight=4 data.sources.demo.weight=1 \
		data.epoch_source=books train.epochs=1
	OMP_NUM_THREADS=1 $(BIN)/python -m trainer --config trainer/configs/tiny_cpu.yaml task=sft \
		out_dir=build/tiny_cpu_sft data.sources.demo=null data.sources.papers=null \
		data.sources.instructions.path=build/instructions data.epoch_source=instructions \
		data.seq_len=512 checkpoint.resume=false

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: setup
	$(BIN)/python benchmarks/runner.py

clean:
	rm -rf build $(VENV)
