# The origin as a container image: `docker build -t edge-video-origin .` from the repository root.
# Two stages: the release build, then a slim Debian with ffmpeg/ffprobe (the transcoder runs
# them) and the binary, run as an unprivileged user. Migrations are compiled into the binary.
#
# Settings come from the environment (APP_<SECTION>__<KEY>, docs/operations.md
# "Configuration"); secrets only from it, never baked in: APP_EDGE__SHARED_SECRET,
# APP_SYNC__SECRET, and if used APP_BILLING__SECRET_KEY, APP_BILLING__WEBHOOK_SECRETS,
# APP_STORAGE__S3__ACCESS_KEY_ID, APP_STORAGE__S3__SECRET_ACCESS_KEY.
#
# Ports: 8700 is the public API (publish it). Metrics are off unless APP_METRICS__LISTEN is set;
# set it to 0.0.0.0:9700 for a scraper on the container network and never publish that port
# (docs/security.md "Metrics").

# The toolchain of rust-toolchain.toml (the image's own; that file's Wasm targets are not needed
# for the origin, hence RUSTUP_TOOLCHAIN).
FROM rust:1.95.0-bookworm AS build
ENV RUSTUP_TOOLCHAIN=1.95.0 CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p origin \
 && install -D -m 0755 target/release/origin /out/origin

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/origin --shell /usr/sbin/nologin origin \
 && install -d -o origin -g origin -m 0750 /var/lib/origin
COPY --from=build /out/origin /usr/local/bin/origin
COPY origin/config/base.toml /etc/origin/base.toml
ENV APP_SERVER__HOST=0.0.0.0 \
    APP_SERVER__PORT=8700 \
    APP_DATABASE__URL=sqlite:///var/lib/origin/origin.db \
    APP_STORAGE__MEDIA_DIR=/var/lib/origin/media \
    APP_STORAGE__UPLOAD_DIR=/var/lib/origin/uploads \
    APP_LOG__FORMAT=json
USER origin
WORKDIR /var/lib/origin
VOLUME ["/var/lib/origin"]
EXPOSE 8700
ENTRYPOINT ["/usr/local/bin/origin", "--config", "/etc/origin/base.toml"]
CMD ["serve"]
