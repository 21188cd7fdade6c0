# syntax=docker/dockerfile:1
# The edgeplane image the Helm chart runs (deploy/helm/edgeplane: image.repository
# ghcr.io/edgeplane/edgeplane, tag = the chart's appVersion = the crate version). One
# binary, every component a subcommand (controller, scheduler, descheduler, netctl serve):
#   docker run ghcr.io/edgeplane/edgeplane:0.1.0 scheduler --help
# Build (docs/deploy.md):
#   docker build -t ghcr.io/edgeplane/edgeplane:0.1.0 .
# glibc and rustls with ring: no OpenSSL; protos are compiled by protox: no protoc.

FROM rust:1.95-slim AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit); the binary is copied
# out of the cached target in the same step. The release profile strips it (Cargo.toml).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p edgeplane \
 && install -D -m 0755 target/release/edgeplane /out/edgeplane \
 && /out/edgeplane version

# glibc and libgcc only; user 65532 (nonroot), no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="edgeplane" \
      org.opencontainers.image.description="Network-aware placement for edge computing on Kubernetes" \
      org.opencontainers.image.source="https://github.com/edgeplane/edgeplane" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/edgeplane /usr/local/bin/edgeplane
USER 65532:65532
# The components' default ports: metrics and probes 8081-8084, webhook 9443, netctl gRPC 50052.
EXPOSE 8081 8082 8083 8084 9443 50052
ENTRYPOINT ["/usr/local/bin/edgeplane"]
