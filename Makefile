# Two entry points that work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bigml-fs generate-data --rows 50000
	$(BIN)/bigml-fs validate
	$(BIN)/bigml-fs compile customer_spend | head -40
	$(BIN)/bigml-fs training-set fraud_detector -o .bigml/fraud_detector_training.parquet
	$(BIN)/python -c "import pyarrow.parquet as pq; t = pq.read_table('.bigml/fraud_detector_training.parquet'); print(t.slice(t.num_rows // 2, 3).to_pandas().T.to_string())"

lint: $(STAMP)
	$(BIN)/ruff check bigml_fs tests benchmarks

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -m "not spark" $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pit.py

clean:
	rm -rf .bigml data
