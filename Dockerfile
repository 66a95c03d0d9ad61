# marginalia: a moderated comment service for blogs.
#
#   docker build -t marginalia .
#   docker run -d -p 3000:3000 -v marginalia-data:/data --stop-timeout 30 marginalia
#
# No HEALTHCHECK: the runtime image has no curl. Point the orchestrator's HTTP
# probes at /healthz (liveness) and /readyz (readiness) instead.

# --- build -------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
# The widget, the moderation page, the language catalogs and openapi.yaml are compiled into the
# binary; the benchmark tools are declared as examples in Cargo.toml, so cargo needs them present.
COPY assets ./assets
COPY locales ./locales
COPY openapi.yaml ./
COPY bench ./bench
# The same command as .ci/run: the committed Cargo.lock is used as is.
RUN cargo build --release --locked

# --- run ---------------------------------------------------------------------
# The binary links only libc, libm and libgcc_s (rustls, no OpenSSL), so the
# slim image needs nothing installed.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 marginalia \
 && useradd --system --uid 10001 --gid marginalia --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin marginalia \
 && mkdir /data \
 && chown marginalia:marginalia /data
COPY --from=builder /src/target/release/marginalia /usr/local/bin/marginalia

# Set MARGINALIA_PUBLIC_URL to the address readers and moderators use (the
# https address of the proxy): bound to 0.0.0.0 the default is
# http://127.0.0.1:3000, and /admin refuses calls from any other origin.
ENV MARGINALIA_BIND=0.0.0.0:3000 \
    MARGINALIA_DATABASE_URL=sqlite:///data/marginalia.db
VOLUME ["/data"]
WORKDIR /data
EXPOSE 3000
USER marginalia
ENTRYPOINT ["/usr/local/bin/marginalia"]
CMD ["serve"]
