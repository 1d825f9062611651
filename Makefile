# `make test` and `make demo` set up everything they need on a fresh machine:
# a .venv with the package and its test tools, the JS bundle, and Debian's chromium.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
JS_STAMP := js/node_modules/.installed
BUNDLE := saliency_widgets/static/saliency_map.js
TORCH_PIN := torch==2.13.0
# jax installs its CPU build from the registry; the pins keep the suite reproducible.
JAX_PIN := jax==0.10.2 jaxlib==0.10.2 flax==0.12.8

.PHONY: install test test-python test-js bundle chromium demo bench clean

install: $(BUNDLE) $(PIP_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The bundle comes first, so the build hook finds it and does not run npm itself.
# tf_keras (Keras 2, without its dependencies) is there for the test that refuses its models.
# keras-hub (a Keras causal LM for the generation tests) would pull the full `tensorflow` and
# tensorflow-text beside tensorflow-cpu: it and its model-hub client go in without dependencies.
$(PIP_STAMP): pyproject.toml | $(PY) $(BUNDLE)
	$(PY) -m pip install --quiet "$(TORCH_PIN)" $(JAX_PIN) -e ".[torch,tensorflow,jax,dev]"
	$(PY) -m pip install --quiet --no-deps tf_keras==2.21.0 keras-hub==0.32.0 kagglehub==1.0.3 kagglesdk==0.1.38
	touch $@

$(JS_STAMP): js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund
	touch $@

$(BUNDLE): $(JS_STAMP) $(shell find js/src -type f 2>/dev/null) js/build.mjs
	cd js && npm run build

bundle: $(BUNDLE)

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test-js: $(JS_STAMP)
	cd js && npm test

# Keras picks its backend at import: the Keras test modules and the Keras cells of the conformance
# matrix run again on torch and on JAX, each backend in its own process, the two side by side (the
# default run is on TensorFlow; tests/test_keras_backends.py compares the three in one test).
KERAS_TESTS := tests/test_keras_gradients.py tests/test_keras_per_sample.py tests/test_structured_keras.py \
	tests/test_weights_keras.py "tests/test_conformance.py::test_cell" -k "keras or not test_cell"

test-python: install chromium
	$(PY) -m pytest
	@mkdir -p test-artifacts; pids=""; \
	for b in torch jax; do \
	  KERAS_BACKEND=$$b $(PY) -m pytest -q -p no:cacheprovider $(KERAS_TESTS) > test-artifacts/keras-on-$$b.log 2>&1 & \
	  pids="$$pids $$!"; \
	done; failed=0; for pid in $$pids; do wait $$pid || failed=1; done; \
	for b in torch jax; do echo "== Keras tests on $$b"; tail -n 25 test-artifacts/keras-on-$$b.log; done; \
	exit $$failed

test: test-js test-python

BENCHES := engine_bench widgets_bench methods_bench structured_bench zoo_bench first_calls_bench dataset_bench \
	generation_bench backends_bench

# Every benchmark runs, also after one misses a goal; the target fails at the end if any did.
# inseq (an alternative the generation benchmark measures) installs beside the pins, for the benchmarks only.
bench: install chromium
	$(PY) -m pip install --quiet inseq==0.7.1
	@failed=""; for b in $(BENCHES); do \
	  echo "== $$b"; (cd benchmarks && ../$(PY) $$b.py) || failed="$$failed $$b"; done; \
	  if [ -n "$$failed" ]; then echo "goals missed in:$$failed"; exit 1; fi

demo: install
	$(VENV)/bin/jupyter lab examples/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

clean:
	rm -rf $(VENV) js/node_modules saliency_widgets/static test-artifacts
