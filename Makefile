# Parley's two set-up commands (see README):  make serve   |   make test
# Both create ./.venv and install what they need; `make test` also installs espeak-ng when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: serve test lint format system-deps clean

# Runtime only: no torch.
$(VENV)/.runtime: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

# Everything: training (torch CPU build), export and test tools.
$(VENV)/.dev: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[train,dev]'
	touch $@ $(VENV)/.runtime

serve: $(VENV)/.runtime
	$(VENV)/bin/parley serve $(ARGS)

system-deps:
	@bash .ci/system-deps

test: system-deps $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# ---- The English model recipe (issues: streaming Transformer-Transducer, ONNX bundles) --------------------------
# make model-en DATA=/path/to/data EXP=/path/to/exp   corpus -> training -> evaluation -> bundle; each step resumes.
DATA ?= data
EXP  ?= exp
JOBS ?= 2
EN_EPOCHS ?= 3
BUNDLES ?= bundles

.PHONY: corpus-en train-en eval-en bundle-en model-en
corpus-en: $(VENV)/.dev
	$(VENV)/bin/parley corpus build --out $(DATA)/corpus-en --languages en --hours 20 \
		--dev 400 --test 400 --test-unseen 400 --jobs $(JOBS) --seed 0

train-en: $(VENV)/.dev
	$(VENV)/bin/parley train --train $(DATA)/corpus-en/en/train.jsonl --dev $(DATA)/corpus-en/en/dev.jsonl \
		--tokenizer models/lang/en/bpe.model --exp-dir $(EXP)/en --epochs $(EN_EPOCHS) --max-seconds 30 \
		--lr 1.5e-3 --warmup-steps 300 --ctc-weight 0.3 --num-workers 1 --dev-utts 150 --dev-every 1000

eval-en: $(VENV)/.dev
	$(VENV)/bin/parley eval --checkpoint $(EXP)/en/last.pt --tokenizer models/lang/en/bpe.model \
		--manifest $(DATA)/corpus-en/en/test.jsonl $(DATA)/corpus-en/en/test_unseen.jsonl \
		--chunk-ms 160 320 640 full --history-ms 1280 --out $(EXP)/en/eval

bundle-en: $(VENV)/.dev
	$(VENV)/bin/parley export --checkpoint $(EXP)/en/last.pt --tokenizer models/lang/en/bpe.model --name en-small \
		--chunk-ms 320 --history-ms 1280 --int8 --eval-report $(EXP)/en/eval/report.json --out $(BUNDLES)/en-small

model-en: corpus-en train-en eval-en bundle-en
