# syncd as a service: one process, a SQLite file (or PostgreSQL) as its only state.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncd ./syncd
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --home /var/lib/syncd --create-home syncd
COPY --from=build /install /usr/local
COPY mappings /etc/syncd/mappings
COPY config.example.toml /etc/syncd/config.example.toml
USER syncd
WORKDIR /var/lib/syncd
ENV SYNCD_CONFIG=/etc/syncd/syncd.toml
# Webhook receiver and admin listener (see [webhooks] and [admin] in the config).
EXPOSE 8080 8081
ENTRYPOINT ["syncd"]
CMD ["run"]
