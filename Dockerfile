# estuary: multi-stage build, small non-root runtime image.
#   docker build --build-arg ESTUARY_COMMIT=$(git rev-parse --short HEAD) -t estuary .
#   docker run --rm -p 8080:8080 -p 8081:8081 -p 127.0.0.1:9090:9090 \
#     -e ESTUARY_API_TOKEN="$(openssl rand -hex 32)" estuary
# (edge for players, ingest for encoders, the API on this machine only: it needs its token.)
FROM rust:1-bookworm AS build
WORKDIR /src
# The dependencies first, in a layer of their own: rebuilt only when the manifests or the lock
# change, not on every source edit (the workspace's targets are stubbed for this build).
COPY Cargo.toml Cargo.lock ./
COPY loadtest/Cargo.toml loadtest/Cargo.toml
COPY crates/budget/Cargo.toml crates/budget/Cargo.toml
COPY crates/cache/Cargo.toml crates/cache/Cargo.toml
COPY crates/cluster/Cargo.toml crates/cluster/Cargo.toml
COPY crates/http/Cargo.toml crates/http/Cargo.toml
COPY crates/live/Cargo.toml crates/live/Cargo.toml
COPY crates/media/Cargo.toml crates/media/Cargo.toml
COPY crates/storage/Cargo.toml crates/storage/Cargo.toml
COPY crates/sys/Cargo.toml crates/sys/Cargo.toml
COPY crates/telemetry/Cargo.toml crates/telemetry/Cargo.toml
RUN mkdir -p src benches loadtest/src \
 && for crate in budget cache cluster http live media storage sys telemetry; do mkdir -p "crates/$crate/src" && touch "crates/$crate/src/lib.rs"; done \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && for bench in hot_path vod live; do echo 'fn main() {}' > "benches/$bench.rs"; done \
 && echo 'fn main() {}' > loadtest/src/main.rs && touch loadtest/src/lib.rs \
 && cargo build --release --locked --bin estuary \
 && rm -rf src benches loadtest/src crates/*/src target/release/estuary* target/release/deps/estuary* \
    target/release/deps/libestuary* target/release/.fingerprint/estuary*
COPY . .
# estuary_build_info{commit} in /metrics.
ARG ESTUARY_COMMIT=unknown
RUN ESTUARY_COMMIT=$ESTUARY_COMMIT cargo build --release --locked --bin estuary \
 && strip target/release/estuary

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /srv/estuary --shell /usr/sbin/nologin estuary
COPY --from=build /src/target/release/estuary /usr/local/bin/estuary
COPY --chown=10001:10001 assets /srv/estuary/assets
COPY estuary.example.toml /etc/estuary/estuary.example.toml
WORKDIR /srv/estuary
USER 10001
# The API listens on all interfaces inside the container so the kubelet can
# probe it; set ESTUARY_API_TOKEN to protect /api/v1/*.
ENV ESTUARY_STORAGE_ROOT=/srv/estuary/assets \
    ESTUARY_API_ADDR=0.0.0.0:9090 \
    ESTUARY_LOG_FORMAT=json
# edge, ingest, api
EXPOSE 8080 8081 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["estuary", "health", "--addr", "127.0.0.1:8080", "--path", "/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["estuary"]
CMD ["serve"]
