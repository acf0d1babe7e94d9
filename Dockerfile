# syntax=docker/dockerfile:1
# uptun's public server (and local-agent) for container platforms: Fly,
# Render, or any host with Docker. docs/deploy.md walks through each.
#   docker build -t uptun .
#   docker run -e UPTUN_AGENT_TOKEN=s3cret -p 8080:8080 uptun
# The server listens on 0.0.0.0:$PORT; platforms set PORT, 8080 otherwise.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Only what cargo needs: the workspace manifest, the lock file and every
# member (cargo loads them all, even to build two packages).
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY tests tests
COPY bench bench
# The registry and target caches outlive this layer (BuildKit), so a
# source change rebuilds uptun's crates and not its dependencies. The
# binaries leave the cache by copy, within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p public-server -p local-agent \
 && mkdir /out \
 && cp target/release/public-server target/release/local-agent /out/

# glibc and CA certificates, no shell, no package manager: the same Debian
# release as the build stage, so the binaries' glibc matches.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/public-server /out/local-agent /usr/local/bin/
# A numeric user, so the platform knows it is not root without reading
# /etc/passwd (Kubernetes' runAsNonRoot checks this).
USER 10001:10001
ENV PORT=8080
EXPOSE 8080
CMD ["public-server"]
