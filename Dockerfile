# syntax=docker/dockerfile:1
#
# iothub-access-operator container image.
#   docker build -t ghcr.io/iothub-access-operator/iothub-access-operator:0.1.0 .
# The final image holds only the binary on distroless (glibc, CA certificates, no shell) and
# runs as uid 65532, matching the chart's and deploy/'s securityContext.

# ---- build --------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# The whole workspace (.dockerignore keeps target/, .git and the packaging out): the crate
# embeds examples/ and data/ at compile time, and the workspace member emulator/ is a
# path dependency.
COPY . .

# Cache mounts keep the crates.io registry and the target directory between builds; the binary
# is copied out of the cache mount so the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin iothub-access-operator \
 && install -D -m 0755 target/release/iothub-access-operator /out/iothub-access-operator

# ---- run ----------------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="iothub-access-operator" \
      org.opencontainers.image.description="Kubernetes operator that manages Azure IoT Hub access" \
      org.opencontainers.image.source="https://github.com/iothub-access-operator/iothub-access-operator" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/iothub-access-operator /usr/local/bin/iothub-access-operator

# nonroot:nonroot in distroless; numeric so `runAsNonRoot: true` can verify it.
USER 65532:65532

# /metrics, /healthz and /readyz (`--metrics-listen 0.0.0.0:8080`).
EXPOSE 8080

ENTRYPOINT ["/usr/local/bin/iothub-access-operator"]
CMD ["run"]
