# The study book's pipeline. `make book` and `make test` do all set-up on a fresh clone.
PROFILE ?= cpu
PYTHON ?= python3.11
ARCHIVES ?= ../shared/data
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all setup lock data data-reduced dry-run prove book test test-fast verify screenshot lab sweep-example browser bench \
        bench-recipes bench-hours bench-contention clean
all: book

# The virtual environment from the lock (every package pinned), re-made when it changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Regenerate requirements.lock from requirements.txt in a throw-away environment.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	{ sed -n 1,3p requirements.lock; build/lock-venv/bin/python -m pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf build/lock-venv

setup: $(STAMP)

# Unpack ../shared/data (sha256 checked) into data/, or download with torchvision.
data: setup
	$(PY) -m simplecnn data --archives $(ARCHIVES)

# A reduced Imagenette (<= 60 MB, 144 px) for machines the full archive cannot be copied to.
data-reduced: data
	$(PY) -m simplecnn data-reduced --out build/data-reduced

# Prove the gpu and paper profiles on this machine at full size, for real: every chapter with its
# real models and resolutions, two training steps each, each chapter's accelerator-memory estimate
# (about a quarter of an hour; make test proves the same on meta tensors and small resolutions).
dry-run: data
	$(PY) -m pytest -m dryrun -s tests/test_dry_run.py

# Every model of a profile forward and backward on meta tensors at full size (seconds).
prove: setup
	$(PY) -m simplecnn prove --profile $(if $(filter cpu,$(PROFILE)),gpu,$(PROFILE))

# Execute the notebooks that changed (papermill) and build the HTML (jupyter-book 1.x).
book: data
	$(PY) -m simplecnn book --profile $(PROFILE)

# Unit tests, a smoke-profile build of the whole book opened in headless Chromium, the gpu and
# paper profiles proved (meta tensors at full size, notebooks small); on both cores, slowest listed.
test: data browser
	$(PY) -m pytest -n 2 -m "not dryrun" --durations=15

# The inner loop: everything but notebook executions, training runs, subprocesses and large passes.
test-fast: setup
	$(PY) -m pytest -n 2 -m "not slow and not dryrun"

# Re-run the book's profile into a scratch folder and judge it against the committed results.
verify: data
	$(PY) -m simplecnn run --profile $(PROFILE) --out build/verify
	$(PY) -m simplecnn verify build/verify --profile $(PROFILE) --md build/verify/report.md

# A picture of the built book for the README (headless Chromium, as the browser test drives it).
screenshot: browser
	$(PY) -m simplecnn screenshot --profile $(PROFILE) --out docs/book.png

# Debian's Chromium for the browser test (playwright drives it; its own download cannot run here).
browser:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium"; \
	  $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq chromium >/dev/null; }

# JupyterLab on the notebooks: jupytext opens the .py files as notebooks and saves them back.
lab: setup
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(PY) -m jupyter lab --notebook-dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# A small batch re-run: the patch study's full-image CNN over two epoch budgets and two seeds.
sweep-example: data
	$(PY) -m simplecnn sweep notebooks/03_patches.py --profile smoke -p ceiling_epochs 1 2 -p seed 0 1 -j 2 \
	  --metric ceiling_acc --x ceiling_epochs

# Training throughput of the core against a naive ImageFolder + DataLoader pipeline.
bench: data
	$(PY) benchmarks/train_throughput.py

# Accuracy against training time of the plain and fast recipes (about an hour on 2 cores).
bench-recipes: data
	$(PY) benchmarks/recipes.py --datasets cifar10 imagenette --seeds 0 1 2 --plain-seeds 0

# Expected training hours of a profile's chapters from img/s measured here (PROFILE=paper by default).
bench-hours: setup
	$(PY) benchmarks/profile_hours.py --profile $(if $(filter cpu,$(PROFILE)),paper,$(PROFILE))

# One training epoch alone and beside a competing training process, per thread-waiting policy.
bench-contention: setup
	$(PY) benchmarks/contention.py

clean:
	rm -rf build
