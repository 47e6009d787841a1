# Kindly: `make run` starts everything, `make test` checks everything. Both build what is missing first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v pyenv >/dev/null && echo "$$(pyenv root)/versions/$$(cat .python-version)/bin/python" || echo python3.10)
ENGINE := .venv-engine/bin
APP := .venv-app/bin
MODEL := models/kindly.tar.gz
NLU_DATA := $(wildcard data/*.yml data/nlu/*.yml)

export PYTHONPATH := $(CURDIR)
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 3
export ACTION_SERVER_URL ?= http://127.0.0.1:5055/webhook

.PHONY: run run-production test browser chat setup unit engine-test rasa-test bench soak clean import

setup: .venv-engine/.done .venv-app/.done $(MODEL)

.venv-engine/.done: requirements/engine.txt
	rm -rf .venv-engine && $(PYTHON) -m venv .venv-engine
	$(ENGINE)/pip install -q --upgrade pip==24.0 setuptools==70.3.0 wheel==0.43.0
	$(ENGINE)/pip install -q -r requirements/engine.txt
	touch $@

.venv-app/.done: requirements/app.txt
	rm -rf .venv-app && $(PYTHON) -m venv .venv-app
	$(APP)/pip install -q --upgrade pip==24.0
	$(APP)/pip install -q -r requirements/app.txt
	touch $@

$(MODEL): .venv-engine/.done config.yml domain.yml $(NLU_DATA) $(wildcard bot/*.py)
	$(ENGINE)/rasa train --config config.yml --domain domain.yml --data data --out models --fixed-model-name kindly --quiet

run: setup
	$(APP)/python -m scripts.run

# PostgreSQL (DATABASE_URL=postgresql://...), Redis (REDIS_URL), ENGINE_INSTANCES engines and GATEWAY_WORKERS
# gateway workers (2 and 2 by default), the action server: see the README's production profile.
run-production: setup
	KINDLY_PROFILE=production $(APP)/python -m scripts.run

chat: setup
	$(APP)/python -m scripts.chat $(ACCOUNT)

# Debian's chromium for the console's browser test; where it can't be installed, that test is skipped with the reason.
browser:
	@command -v chromium >/dev/null || apt-get install -y -q chromium >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
		|| echo "chromium could not be installed: the console's browser test will be skipped"

test: setup browser
	$(ENGINE)/rasa data validate --config config.yml --domain domain.yml --data data --fail-on-warnings
	$(ENGINE)/python -m pytest tests/engine -q --confcutdir=tests/engine
	$(ENGINE)/rasa test core --model $(MODEL) --stories tests/ --out results/core --fail-on-prediction-errors
	$(APP)/python -m pytest tests -q -rs --ignore=tests/engine

import: .venv-app/.done  # make import FILE=accounts.csv
	$(APP)/python -m kindly import $(FILE)

bench: setup
	$(ENGINE)/python bench/nlu_eval.py
	$(APP)/python bench/turn_latency.py

# 50 concurrent simulated calls for 5 minutes through the webhooks (bench/soak.py --help for the options).
soak: setup
	$(APP)/python bench/soak.py

clean:
	rm -rf .venv-engine .venv-app models results var
