# syntax=docker/dockerfile:1
#
# docker build --build-arg VERSION="$(git describe --tags --always --dirty)" \
#   --build-arg REVISION="$(git rev-parse HEAD)" -t dbops .
# docker run IMAGE version | docker run IMAGE plan /stacks | docker run IMAGE (dbops run, the default CMD)
# CGO_ENABLED=1 (default) builds in the SQL parser of reconcile/risk (pg_query_go); 0 builds without it
#
# Not built on the machine this was written on (no container engine): checked by reading.

# Builder and runtime share one Debian release, so a cgo binary finds the glibc it was linked against.
ARG GO_VERSION=1.26
ARG DEBIAN_RELEASE=bookworm

FROM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS build
# 0: static pure-Go binary. 1: cgo (gcc and libc6-dev are in this image), dynamically linked to glibc.
ARG CGO_ENABLED=1
ARG VERSION=dev
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED="${CGO_ENABLED}" go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${REVISION}" \
      -o /out/dbops ./cmd/dbops

FROM debian:${DEBIAN_RELEASE}-slim
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/amanat/dbops
# OCI image annotations (https://github.com/opencontainers/image-spec/blob/main/annotations.md).
LABEL org.opencontainers.image.title="dbops" \
      org.opencontainers.image.description="Keeps a PostgreSQL + Redis stack in the state its git repository declares" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.version="${VERSION}"
# pg_dump refuses a server newer than itself: the runbook's server is PostgreSQL 18.
ARG PG_MAJOR=18
# pg_dump/pg_restore of that major version come first on PATH (not Debian's pg_wrapper).
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH \
    XDG_CACHE_HOME=/var/cache
# Debian's own PostgreSQL client is 15, so use the PGDG repository (apt.postgresql.org).
RUN set -eux; \
    export DEBIAN_FRONTEND=noninteractive; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl tzdata; \
    install -d -m 0755 /etc/apt/keyrings; \
    curl -fsSL -o /etc/apt/keyrings/postgresql.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    . /etc/os-release; \
    echo "deb [signed-by=/etc/apt/keyrings/postgresql.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" redis-tools; \
    apt-get purge -y --auto-remove curl; \
    rm -rf /var/lib/apt/lists/*; \
    pg_dump --version | grep -q "(PostgreSQL) ${PG_MAJOR}\."; \
    pg_restore --version; \
    redis-cli --version

RUN set -eux; \
    groupadd --gid 10001 dbops; \
    useradd --uid 10001 --gid dbops --create-home --home-dir /home/dbops --shell /usr/sbin/nologin dbops; \
    install -d -o dbops -g dbops -m 0750 /var/cache/dbops /var/backups/dbops

COPY --from=build /out/dbops /usr/local/bin/dbops
RUN dbops version

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /home/dbops
EXPOSE 9090
# Probes the running process over HTTP; the image has no curl or wget.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["dbops", "healthcheck", "--url", "http://127.0.0.1:9090/healthz"]
# The image runs any dbops command: `docker run IMAGE version`, `docker run IMAGE plan /stacks`.
# Without arguments it is the reconciler. Arguments replace CMD entirely: for `run` with
# other flags, repeat run and --listen 0.0.0.0:9090 (the flag defaults to 127.0.0.1).
# The cache dir defaults to /var/cache/dbops anyway ($XDG_CACHE_HOME/dbops).
ENTRYPOINT ["dbops"]
CMD ["run", "--listen", "0.0.0.0:9090", "--cache-dir", "/var/cache/dbops"]
