# syntax=docker/dockerfile:1
#
# iothub-access-operator container image.
#   docker build -t ghcr.io/iothub-access-operator/iothub-access-operator:0.1.0 .
# The final image holds only the binary on distroless cc (glibc, libgcc, CA certificates, tzdata;
# no shell, no package manager) and runs as uid 65532, matching the chart's and deploy/'s
# securityContext.
#
# Both bases are build arguments, so that a machine that cannot pull them can bring its own:
# `scripts/image build` (podman, no registry) passes a runtime base it assembles from the same
# Debian packages, and BINARY=prebuilt with a build context that holds only the binary
# `cargo build --release --locked` made there, built as the build stage builds it (paths remapped
# to /src and /usr/local/cargo, the release profile below). See README, "The container image".
ARG BUILDER_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot
# build: compile in BUILDER_IMAGE; prebuilt: take ./iothub-access-operator from the build context.
ARG BINARY=build

# ---- build --------------------------------------------------------------------------------
FROM ${BUILDER_IMAGE} AS build
WORKDIR /src

# The whole workspace (.dockerignore keeps target/, .git and the packaging out): the crate
# embeds examples/ and data/ at compile time, and the workspace member emulator/ is a
# path dependency.
COPY . .

# The image's release profile: optimized for size, whole-program LTO in one codegen unit,
# symbols stripped. The binary is 15 MiB instead of 28 MiB with Cargo's release defaults, and it
# took less to build (measured, 2 cores: 8.7 CPU-minutes instead of 11.6); panics still name
# their file and line.
# scripts/image reads these lines to build the same binary outside the image.
ENV CARGO_PROFILE_RELEASE_OPT_LEVEL=s
ENV CARGO_PROFILE_RELEASE_LTO=fat
ENV CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
# The paths the binary may name, marked remapped onto themselves as scripts/image remaps its own
# onto them (rustc lays a binary out differently when paths are remapped): with the same
# toolchain, this stage and scripts/image build the same bytes (measured: same sha256).
ENV RUSTFLAGS="--remap-path-prefix=/src=/src --remap-path-prefix=/usr/local/cargo=/usr/local/cargo --remap-path-prefix=/src/target=/src/target"

# Cache mounts keep the crates.io registry and the target directory between builds; the binary
# is copied out of the cache mount so the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin iothub-access-operator \
 && install -D -m 0755 target/release/iothub-access-operator /out/iothub-access-operator

# ---- or the binary built beforehand -------------------------------------------------------
FROM scratch AS prebuilt
COPY --chmod=0755 iothub-access-operator /out/iothub-access-operator

FROM ${BINARY} AS binary

# ---- run ----------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}

LABEL org.opencontainers.image.title="iothub-access-operator" \
      org.opencontainers.image.description="Kubernetes operator that manages Azure IoT Hub access" \
      org.opencontainers.image.source="https://github.com/iothub-access-operator/iothub-access-operator" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=binary /out/iothub-access-operator /usr/local/bin/iothub-access-operator

# nonroot:nonroot in distroless; numeric so `runAsNonRoot: true` can verify it.
USER 65532:65532

# /metrics, /healthz and /readyz (`--metrics-listen 0.0.0.0:8080`).
EXPOSE 8080

ENTRYPOINT ["/usr/local/bin/iothub-access-operator"]
CMD ["run"]
