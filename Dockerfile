# The service's container: a wheel built in one stage, installed into a virtual environment in a
# second, and only that environment (with the clinical content inside the package) in the image.
#   docker build -t cds-service .
#   docker run -p 8000:8000 -e CDS_AUTH=off cds-service

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip==25.3 build==1.3.0
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY cards ./cards
RUN /opt/venv/bin/python -m build --wheel --outdir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir /wheels/*.whl \
    && /opt/venv/bin/pip uninstall --yes build pip


FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="Vitamin D and leg cramps CDS Hooks service"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cds
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CDS_WORKERS=2 \
    CDS_DATABASE_URL=sqlite+aiosqlite:////tmp/cds-feedback.sqlite
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["cds-service", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
