# Two commands set up everything: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo-data
DB     ?= $(DEMO)/advertisex.duckdb

.PHONY: demo test lint bench clean sysdeps assets

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	@command -v npm >/dev/null && $(MAKE) -s assets || echo "dashboard assets not built (npm missing or failed): no charts until 'make assets'"
	rm -rf $(DEMO)
	$(BIN)/advertisex generate $(DEMO)/input --impressions 200000 --days 3 --seed 7
	$(BIN)/advertisex dims load $(DEMO)/input/dims/creatives.csv --db $(DB)
	# exit code 3 means "some rows quarantined": the demo injects faults on purpose
	$(BIN)/advertisex ingest $(DEMO)/input/data --db $(DB) || [ $$? -eq 3 ]
	$(BIN)/advertisex report --db $(DB) --by campaign --metrics impressions,clicks,ctr,conversions,cvr,spend,cpa,roas
	@echo "dashboard and query API: $(BIN)/advertisex serve --db $(DB), then open http://127.0.0.1:8080/"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

sysdeps:
	./deploy/install-system-packages

test: lint sysdeps assets
	$(BIN)/pytest -n 2

# The dashboard's browser libraries: from the npm registry (web/package-lock.json) into the
# package, so that the served page needs no CDN.
ASSETS := src/advertisex/api/static/vendor
$(ASSETS)/.built: web/package.json web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(ASSETS)
	cp web/node_modules/uplot/dist/uPlot.iife.min.js web/node_modules/uplot/dist/uPlot.min.css $(ASSETS)/
	cp web/node_modules/uplot/LICENSE $(ASSETS)/uPlot.LICENSE
	cp web/node_modules/swagger-ui-dist/swagger-ui-bundle.js web/node_modules/swagger-ui-dist/swagger-ui.css $(ASSETS)/
	cp web/node_modules/swagger-ui-dist/LICENSE $(ASSETS)/swagger-ui.LICENSE
	touch $@

assets: $(ASSETS)/.built

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/analytics_bench.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache web/node_modules $(ASSETS)
