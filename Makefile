# polymr -- common tasks. `make` (or `make help`) lists them.

CARGO  ?= cargo
PYTHON ?= python3
CC     ?= cc
CFLAGS ?= -O2 -Wall

POLYMR      := target/release/polymr
NATIVE      := custom-mappers/os_count_c
SAMPLE      := examples/data
DEMO_OUT    := target/demo/result.txt
DEMO_INPUT  ?= $(SAMPLE)
# A Python with `cryptography`, for the independent credentials test vectors.
TEST_VENV   := target/test-venv
# Commands the tests need, and the Debian package that provides each.
TEST_CMDS   := xz:xz-utils gzip:gzip zstd:zstd bzip2:bzip2 $(CC):gcc mawk:mawk \
               $(PYTHON):python3 node:nodejs chromium:chromium
# The container image (docker/Dockerfile). Its base is built here from Debian's packages
# (`make base-image`: no registry needed); BASE=debian-like-image:tag uses another one.
IMAGE        ?= polymr
TAG          ?= latest
DEBIAN_SUITE ?= bookworm
BASE_IMAGE   ?= polymr-base:$(DEBIAN_SUITE)
BASE         ?= $(BASE_IMAGE)
# The binary put in the image (stripped of debug info into IMAGE_BIN, inside the context).
POLYMR_BIN   ?= $(POLYMR)
IMAGE_BIN    := target/docker/polymr
# `make publish REGISTRY=host[:port] [INDEX=namespace]` pushes REGISTRY/INDEX/IMAGE:TAG.
REGISTRY     ?=
INDEX        ?=
PUBLISHED     = $(REGISTRY)/$(if $(INDEX),$(INDEX)/)$(IMAGE):$(TAG)

.DEFAULT_GOAL := help
.PHONY: help build native sample demo test-deps test lint bench image base-image publish

help: ## list the targets
	@echo "usage: make TARGET   (variables: CARGO=$(CARGO) PYTHON=$(PYTHON) CC=$(CC))"
	@echo "       image variables: IMAGE=$(IMAGE) TAG=$(TAG) BASE=$(BASE) FORCE=1 (base-image)"
	@echo "                        REGISTRY=host[:port] INDEX=namespace (publish)"
	@echo
	@grep -E '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | \
		awk 'BEGIN { FS = ":.*## " } { printf "  %-11s %s\n", $$1, $$2 }'

build: ## build the release binary (target/release/polymr)
	$(CARGO) build --release

native: $(NATIVE) ## compile the native example mapper (custom-mappers/os_count_c)

$(NATIVE): custom-mappers/os_count.c
	$(CC) $(CFLAGS) -o $@ $<

sample: ## regenerate the bundled sample data in examples/data
	$(PYTHON) examples/gen_sample.py --out $(SAMPLE) --meta examples --invalid 3 --clean

demo: build ## count pings per OS in the bundled sample with `polymr run`, and print them
	@mkdir -p $(dir $(DEMO_OUT))
	./$(POLYMR) run --output $(DEMO_OUT) $(DEMO_INPUT)
	@echo "== pings per OS ($(DEMO_OUT)):"
	@cat $(DEMO_OUT)
	@echo "== expected (examples/expected_os_counts.tsv):"
	@cat examples/expected_os_counts.tsv

test-deps: ## install what the tests need (Debian, apt-get) when it is missing
	@missing=""; \
	for pair in $(TEST_CMDS); do \
		cmd=$${pair%%:*}; pkg=$${pair#*:}; \
		command -v "$$cmd" >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then echo "test-deps: all present"; exit 0; fi; \
	echo "test-deps: installing$$missing"; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "test-deps: no apt-get here; install these yourself:$$missing" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; \
	else echo "test-deps: not root and no sudo; install:$$missing" >&2; exit 1; fi; \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	|| { $$SUDO apt-get update && \
	     $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; } \
	|| { echo "test-deps: could not install$$missing (no network?)" >&2; exit 1; }
	@# cryptography: independent credential test vectors; moto[server]: the S3-compatible test server; aiosmtpd: the SMTP server; orjson: the Python helper's fast path; jsonschema, pyyaml, rfc3339-validator: Taskcluster's schemas (tests/fixtures/taskcluster).
	@$(TEST_VENV)/bin/python -c 'import cryptography, moto.server, aiosmtpd, orjson, jsonschema, yaml, rfc3339_validator' 2>/dev/null || { \
		echo "test-deps: making $(TEST_VENV) with cryptography, moto[server], aiosmtpd, orjson and jsonschema"; \
		{ [ -x $(TEST_VENV)/bin/pip ] || $(PYTHON) -m venv $(TEST_VENV); } && \
		$(TEST_VENV)/bin/pip install --quiet cryptography 'moto[server]' aiosmtpd 'orjson==3.13.0' jsonschema pyyaml rfc3339-validator; } \
	|| { echo "test-deps: could not make $(TEST_VENV) (needs python3-venv and PyPI)" >&2; exit 1; }
	@# pyspark (about 460 MB; needs Java 17 or 21): the Spark tests (tests/spark.rs) run local-cluster mode from it.
	@$(TEST_VENV)/bin/python -c 'import pyspark' 2>/dev/null || { 		echo "test-deps: installing pyspark into $(TEST_VENV)"; 		$(TEST_VENV)/bin/pip install --quiet pyspark; } 	|| { echo "test-deps: could not install pyspark into $(TEST_VENV) (needs PyPI)" >&2; exit 1; }

test: test-deps native ## run the whole test suite (Rust, Python helper, JS helper)
	POLYMR_TEST_PYTHON=$(CURDIR)/$(TEST_VENV)/bin/python $(CARGO) test --release
	$(PYTHON) -m unittest discover -s helpers/python -v
	node --test helpers/js/test_polymr_helper.js

lint: ## check formatting and clippy warnings
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: ## run the benchmark (bench/run.sh)
	bash bench/run.sh

base-image: ## build polymr-base:bookworm (Debian, Python 3, Node) with debootstrap, as root; FORCE=1 rebuilds
	BASE_IMAGE='$(BASE_IMAGE)' SUITE='$(DEBIAN_SUITE)' ROOTFS=target/base-image/rootfs \
		FORCE='$(FORCE)' MIRROR='$(MIRROR)' bash docker/base-image.sh

# Builds polymr unless POLYMR_BIN names another binary, and the base image when it is ours.
image: $(if $(filter $(POLYMR),$(POLYMR_BIN)),build) $(if $(filter $(BASE_IMAGE),$(BASE)),base-image) ## build the container image IMAGE:TAG (polymr:latest) from docker/Dockerfile
	@mkdir -p $(dir $(IMAGE_BIN))
	@command -v objcopy >/dev/null 2>&1 \
		&& objcopy --strip-debug '$(POLYMR_BIN)' $(IMAGE_BIN).tmp \
		|| cp '$(POLYMR_BIN)' $(IMAGE_BIN).tmp
	@mv -f $(IMAGE_BIN).tmp $(IMAGE_BIN)
	docker build -f docker/Dockerfile --build-arg BASE='$(BASE)' \
		--build-arg POLYMR_BIN=$(IMAGE_BIN) -t '$(IMAGE):$(TAG)' .

publish: image ## tag IMAGE:TAG as REGISTRY/INDEX/IMAGE:TAG and push it
	@test -n '$(REGISTRY)' || { echo "make publish: set REGISTRY=host[:port] (and INDEX=namespace)" >&2; exit 2; }
	docker tag '$(IMAGE):$(TAG)' '$(PUBLISHED)'
	docker push '$(PUBLISHED)'
