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
	$(BIN)/bigml-fs compile customer_spend --dialect postgres | head -30
	$(BIN)/bigml-fs plan
	$(BIN)/bigml-fs materialize
	$(BIN)/bigml-fs online -f customer_spend:txn_count_1h,customer_spend:amount_sum_7d,customer_spend:last_amount,customer_profile:segment \
	    -e customer_id=1 -e customer_id=2 -e customer_id=3
	$(BIN)/python -m bigml_fs.example.demo_server
	$(BIN)/bigml-fs train fraud_detector
	$(BIN)/bigml-fs models show fraud_detector
	$(BIN)/python -m bigml_fs.example.demo_spine .bigml/demo_spine.parquet
	$(BIN)/bigml-fs predict fraud_detector --spine .bigml/demo_spine.parquet -o .bigml/demo_scores.parquet
	$(BIN)/bigml-fs predict fraud_detector --spine .bigml/demo_spine.parquet -o .bigml/demo_scores_sql.parquet --in-warehouse
	$(BIN)/python -c "import numpy as np, pyarrow.parquet as pq; a, b = pq.read_table('.bigml/demo_scores.parquet'), pq.read_table('.bigml/demo_scores_sql.parquet'); print(b.to_pandas().to_string()); print('max |Python - engine| probability:', float(np.max(np.abs(a['probability__1'].to_numpy() - b['probability__1'].to_numpy()))), '| same classes:', a['prediction'].equals(b['prediction']))"

lint: $(STAMP)
	$(BIN)/ruff check bigml_fs tests benchmarks
	$(BIN)/ruff format --check bigml_fs tests benchmarks
	$(BIN)/lint-imports

test: $(STAMP) lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pit.py

clean:
	rm -rf .bigml data
