# Developer entry points. `make` lists them; `make test` is what CI runs.

CARGO ?= cargo
CONTROL_PLANE_BUILD := tests/control-plane/build.sh

.DEFAULT_GOAL := help
.PHONY: help control-plane build fmt fmt-check lint doc test test-unit crds helm-lint run demo bench chaos clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

control-plane: ## Build kube-apiserver, kubectl and helm for the tests (once; cached outside target/)
	@$(CONTROL_PLANE_BUILD)

build: ## Build everything (all features, all targets)
	$(CARGO) build --all-features --all-targets

fmt: ## Format the code
	$(CARGO) fmt --all

fmt-check: ## Fail if the code is not formatted
	$(CARGO) fmt --all -- --check

lint: ## Clippy on everything, warnings are errors
	$(CARGO) clippy --all-features --all-targets -- -D warnings

doc: ## API docs; broken intra-doc links are errors
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --all-features

test: control-plane fmt-check lint doc ## Everything CI checks: unit, integration and end-to-end tests on a real control plane
	$(CARGO) test --all-features

test-unit: ## Unit tests only (no control plane needed)
	$(CARGO) test --all-features --lib

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
	$(CARGO) build --features testenv --bins
	./target/debug/dli-demo $(DEMO_ARGS)

BENCH_ARGS ?=
CHAOS_ARGS ?=

bench: control-plane ## Benchmark the operator (release build): throughput, latency, CPU, memory vs the API server floor, backlog drain vs client-go; BENCH_ARGS="--requests 200" to shorten
	$(CARGO) build --release --features testenv --bins
	target/release/dli-bench $(BENCH_ARGS)

chaos: control-plane ## Kill the operator at random under DLI faults and check one stop per generation; CHAOS_ARGS="--seed N --replicas 2"
	$(CARGO) build --release --features testenv --bins
	target/release/dli-chaos $(CHAOS_ARGS)

clean: ## Remove build output (the control-plane cache is kept; delete it by hand if needed)
	$(CARGO) clean
