# Developer entry points. `make` lists them; `make test` is what CI runs.

CARGO ?= cargo
CONTROL_PLANE_BUILD := tests/control-plane/build.sh

.DEFAULT_GOAL := help
.PHONY: help control-plane build fmt fmt-check lint doc test test-unit crds helm-lint run demo bench chaos image clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

control-plane: ## Build kube-apiserver, kubectl and helm for the tests (once; cached outside target/)
	@$(CONTROL_PLANE_BUILD)

build: ## Build everything (the operator and the development tools in dev/, all targets)
	$(CARGO) build --workspace --all-features --all-targets

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Fail if the code is not formatted
	$(CARGO) fmt --all -- --check

lint: ## Clippy on everything, warnings are errors
	$(CARGO) clippy --workspace --all-features --all-targets -- -D warnings

doc: ## API docs; broken intra-doc links are errors
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace --all-features

test: control-plane fmt-check lint doc ## Everything CI checks: unit, integration and end-to-end tests on a real control plane
	$(CARGO) test --workspace --all-features

test-unit: ## Unit tests only (no control plane needed)
	$(CARGO) test --workspace --all-features --lib

HELM_CHART := deploy/helm/dli-stop-operator

crds: ## Regenerate crds/ (and the Helm chart's copy) from the Rust types
	$(CARGO) run --quiet -- crd > crds/jobstoprequests.yaml.tmp
	mv crds/jobstoprequests.yaml.tmp crds/jobstoprequests.yaml
	cp crds/jobstoprequests.yaml $(HELM_CHART)/crds/jobstoprequests.yaml

helm-lint: ## Lint the Helm chart strictly (builds helm once, into the control-plane cache)
	@tests/helm-tool/build.sh
	"$${DLI_CONTROL_PLANE_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/dli-stop-operator/control-plane}/helm/helm" lint --strict $(HELM_CHART)

run: ## Run the operator against the current kubeconfig
	$(CARGO) run -- run

demo: control-plane ## Start a private control plane and show the operator at work
	$(CARGO) build --workspace --bins
	./target/debug/dli-demo $(DEMO_ARGS)

# The operator exactly as it ships (the Dockerfile's build): built on its own, so no feature a
# development tool asks of a shared dependency reaches it. The harnesses run the binary next
# to their own, target/release/dli-stop-operator.
SHIPPED_OPERATOR = $(CARGO) build --release --locked -p dli-stop-operator --bin dli-stop-operator

BENCH_ARGS ?=
CHAOS_ARGS ?=

bench: control-plane ## Benchmark the operator (release build): throughput, latency, CPU, memory vs the API server floor, backlog drain vs client-go; BENCH_ARGS="--requests 200" to shorten
	$(SHIPPED_OPERATOR)
	$(CARGO) build --release -p dli-stop-dev --bin dli-bench
	target/release/dli-bench $(BENCH_ARGS)

chaos: control-plane ## Kill the operator at random under DLI faults and check one stop per generation; CHAOS_ARGS="--seed N --replicas 2"
	$(SHIPPED_OPERATOR)
	$(CARGO) build --release -p dli-stop-dev --bin dli-chaos
	target/release/dli-chaos $(CHAOS_ARGS)

image: ## The container image without a container daemon: an OCI layout and a `docker load` tarball in target/image/
	$(SHIPPED_OPERATOR)
	tools/image/build.sh target/release/dli-stop-operator target/image

clean: ## Remove build output (the control-plane cache is kept; delete it by hand if needed)
	$(CARGO) clean
