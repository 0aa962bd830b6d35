# syncd as a service: one process, a SQLite file in the /var/lib/syncd volume (or PostgreSQL) as its only state.
#   docker build -t syncd .
#   docker run -v "$PWD/syncd.toml:/etc/syncd/syncd.toml:ro" -v syncd-data:/var/lib/syncd \
#              -e SYNCD_TOKEN_KEY -e SYNCD_DB_UPGRADE=1 -p 8080:8080 -p 127.0.0.1:8081:8081 syncd
# docker-compose.yml runs it with PostgreSQL.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncd ./syncd
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# The service user owns its data folder; the config and mappings stay root's, read-only to it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/syncd --shell /usr/sbin/nologin syncd \
    && install -d -o syncd -g syncd -m 0750 /var/lib/syncd
COPY --from=build /install /usr/local
COPY mappings /etc/syncd/mappings
COPY config.example.toml /etc/syncd/config.example.toml
COPY contrib/docker/entrypoint.sh /usr/local/bin/syncd-entrypoint
RUN chmod 0755 /usr/local/bin/syncd-entrypoint
# SYNCD_DATA_DIR: where a relative SQLite store path (and the default store) goes, instead of beside the config.
# SYNCD_LISTEN_HOST: the listeners' default interface; inside the container's own network namespace every
#   interface is private to it, and `-p` decides what the host exposes (a host in the config still wins).
# SYNCD_DB_UPGRADE=1: `syncd db upgrade` before `syncd run` (the entrypoint does it).
# SYNCD_HEALTHCHECK_URL: what HEALTHCHECK asks; change it with [admin] port.
ENV SYNCD_CONFIG=/etc/syncd/syncd.toml \
    SYNCD_DATA_DIR=/var/lib/syncd \
    SYNCD_LISTEN_HOST=0.0.0.0 \
    SYNCD_DB_UPGRADE=0 \
    SYNCD_HEALTHCHECK_URL=http://127.0.0.1:8081/healthz \
    PYTHONUNBUFFERED=1
# Declared after the folder is made and owned: a new volume starts as the image's folder, owned by syncd.
VOLUME ["/var/lib/syncd"]
USER syncd
WORKDIR /var/lib/syncd
# Webhook receiver and admin listener (see [webhooks] and [admin] in the config).
EXPOSE 8080 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SYNCD_HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["syncd-entrypoint"]
CMD ["run"]
