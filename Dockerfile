# The edgeplane image: one static-ish binary (glibc, rustls with ring, no OpenSSL) on a
# distroless base, running as a non-root user. Every component is a subcommand:
#   docker run ghcr.io/edgeplane/edgeplane scheduler --help
# Build: docker build -t edgeplane .   (docs/deploy.md)

FROM rust:1.95-slim AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p edgeplane \
 && install -D -m 0755 target/release/edgeplane /out/edgeplane

# glibc and libgcc only; user 65532 (nonroot), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/edgeplane /usr/local/bin/edgeplane
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/edgeplane"]
