# syntax=docker/dockerfile:1
#
# A small non-root image of the operator:
#   docker build -t dli-stop-operator:0.1.0 .
#
# The binary links glibc (dynamically, like any default Rust build on Linux), so the runtime
# is distroless "cc": glibc, libgcc, CA certificates and tzdata, no shell, no package manager.
# Builder and runtime are both Debian 12 (bookworm), so the glibc versions match.
#
# Without Docker, `make image` assembles the same runtime files, user and settings
# (tools/image/build.sh; tests/image.rs checks the settings against this file).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what the operator is built from: no tests, no crds/ (the CRD is generated from the
# Rust types). Cargo loads every workspace member, so the development tools' manifest and
# sources come along, though only the operator is compiled.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY dev/Cargo.toml ./dev/
COPY dev/src ./dev/src
# The cache mounts keep the registry and compiled dependencies between builds; the binary
# is copied out because the target/ mount does not persist into the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p dli-stop-operator --bin dli-stop-operator \
 && install -D -m 0755 target/release/dli-stop-operator /out/dli-stop-operator

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="dli-stop-operator" \
      org.opencontainers.image.description="Kubernetes operator that stops Data Lake Insight (DLI) Flink jobs declaratively" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/dli-stop-operator /usr/local/bin/dli-stop-operator
# 65532 is distroless's "nonroot"; numeric so runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# /metrics, /healthz, /readyz
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dli-stop-operator"]
CMD ["run"]
