# mlops.platform — developer entry points.
#
#   make demo    the main job: bring up the embedded local testbed and run the site playbook on it
#   make test    every check CI runs, in order, stopping at the first failure
#
# Everything else is a building block of those two.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV ?= $(ROOT)/.venv
TESTBED_CACHE ?= $(HOME)/.cache/mlops-testbed
PY := $(VENV)/bin/python
# The virtualenv's Python (major.minor): ansible-test runs its venvs on the same interpreter.
PYVER = $(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# ansible-test needs the tree at .../ansible_collections/mlops/platform; this copy is refreshed
# from the working tree (tracked and untracked-but-not-ignored files) before each run. It must lie
# outside any git work tree: inside one, ansible-test asks git for the files and finds none.
ATEST_BASE := $(HOME)/.cache/mlops-platform/ansible-test-$(shell printf %s "$(ROOT)" | sha1sum | cut -c1-8)
ATEST_ROOT ?= $(ATEST_BASE)/current/ansible_collections/mlops/platform
# `make floor` runs sanity and units again on the oldest ansible-core the collection claims.
FLOOR_VENV ?= $(ROOT)/.venv-floor
ANSIBLE_TEST ?= ansible-test

export PATH := $(VENV)/bin:$(TESTBED_CACHE)/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.collections
export MLOPS_TESTBED_CACHE := $(TESTBED_CACHE)
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help bootstrap demo test lint atest-sync sanity units pytest integration molecule build build-check \
        testbed-up testbed-down testbed-status testbed-binaries bench lock clean floor

help:
	@echo "make demo    run the site playbook against the embedded local testbed"
	@echo "make test    lint, sanity, unit, integration and molecule tests (what CI runs)"
	@echo "other: bootstrap testbed-up testbed-down testbed-status build bench lock clean"

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	@bash scripts/demo.sh

test: bootstrap
	@bash scripts/test-stages.sh lint build-check sanity units floor pytest integration molecule

lint:
	@echo "== ansible-lint --profile production"
	ansible-lint --profile production

# Refresh ansible-test's copy of the tree (always: a phony step, not a file).
atest-sync:
	@rm -rf $(ATEST_ROOT) && mkdir -p $(ATEST_ROOT)
	@if git -C $(ATEST_ROOT) rev-parse --git-dir >/dev/null 2>&1; then \
	  echo "ATEST_ROOT=$(ATEST_ROOT) is inside a git work tree; ansible-test would see no files there"; exit 1; fi
	@# Helm chart templates are Go templates, not YAML: `helm lint` checks them (tests/pytest),
	@# so they stay out of ansible-test's copy, whose yamllint would read them as YAML.
	@git ls-files -z --cached --others --exclude-standard \
	  | grep -z -v -E '^tests/testbed/charts/[^/]+/templates/' \
	  | tar --null -T - -cf - | tar -xf - -C $(ATEST_ROOT)
	@# ansible-test resolves dependencies (galaxy.yml) only beside the collection itself.
	@for ns in kubernetes azure; do \
	  ln -sfn $$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/ansible_collections/$$ns \
	    $(ATEST_ROOT)/../../$$ns; done

sanity: atest-sync
	@echo "== ansible-test sanity"
	@# A sanity run that finds no files "passes"; that must count as a failure here.
	cd $(ATEST_ROOT) && $(ANSIBLE_TEST) sanity --venv --python $(PYVER) --color no 2>&1 | tee $(ATEST_ROOT)/../../../sanity.log
	@! grep -q "All targets skipped" $(ATEST_ROOT)/../../../sanity.log

units: atest-sync
	@echo "== ansible-test units"
	cd $(ATEST_ROOT) && $(ANSIBLE_TEST) units --venv --python $(PYVER) --color no --requirements

floor:
	@echo "== floor: ansible-test sanity and units on $$($(FLOOR_VENV)/bin/ansible --version | head -n1)"
	@$(MAKE) --no-print-directory sanity units ATEST_ROOT=$(ATEST_BASE)/floor/ansible_collections/mlops/platform \
	  ANSIBLE_TEST=$(FLOOR_VENV)/bin/ansible-test

integration: atest-sync
	@echo "== ansible-test integration (controller-local targets)"
	cd $(ATEST_ROOT) && $(ANSIBLE_TEST) integration --venv --python $(PYVER) --color no --requirements

pytest:
	@echo "== pytest (testbed-backed tests and tooling tests)"
	$(PY) -m pytest -p no:cacheprovider --durations=30 tests/pytest

molecule:
	@echo "== molecule"
	@scenarios=$$(ls -d molecule/*/molecule.yml 2>/dev/null | xargs -r -n1 dirname | xargs -r -n1 basename); \
	if [[ -z "$$scenarios" ]]; then echo "no molecule scenarios yet"; exit 0; fi; \
	for s in $$scenarios; do molecule test -s $$s || exit 1; done

build:
	ansible-galaxy collection build --force --output-path $(ROOT)/.build/dist

build-check:
	@echo "== collection build, install and ansible-doc"
	@bash scripts/build-check.sh

testbed-binaries:
	@bash tests/testbed/build-binaries.sh

testbed-up: bootstrap testbed-binaries
	@$(PY) tests/testbed/testbed.py up

testbed-down:
	@$(PY) tests/testbed/testbed.py down

testbed-status:
	@$(PY) tests/testbed/testbed.py status

bench: bootstrap
	@bash scripts/bench.sh

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^pip==' \
	  | sed '1i # Locked versions of every Python package the bootstrap installs (regenerate with `make lock`).' > constraints.txt

clean:
	rm -rf .build .pytest_cache
