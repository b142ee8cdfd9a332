# syntax=docker/dockerfile:1
# Multi-stage image: build wheels, then a slim runtime as a non-root user, served by gunicorn.
FROM python:3.11-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends gcc libpq-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY mes ./mes
COPY espace ./espace
COPY habilitation ./habilitation
COPY xds ./xds
COPY fhir_server ./fhir_server
COPY mssante ./mssante
COPY patient_api ./patient_api
COPY conformance ./conformance
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --home /srv/mes mes \
    && mkdir -p /srv/mes/var && chown -R mes /srv/mes
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
WORKDIR /srv/mes
USER mes
ENV MES_VAR_DIR=/srv/mes/var \
    MES_HTTP_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
EXPOSE 8080 2525
# Production: MES_DATABASE_URL=postgresql://..., MES_DOCUMENT_KEY, MES_TRACE_SIGNING_KEY from secrets.
# HTTP faces under gunicorn; run `mes worker` and `mes serve --no-https` (SMTP) as sibling containers.
CMD ["gunicorn", "--bind", "0.0.0.0:8080", "--workers", "2", "--threads", "8", "--access-logfile", "-", "mes.wsgi:app"]
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
