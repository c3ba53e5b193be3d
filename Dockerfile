# Milepost's production image: `docker build -t milepost .` (README "Container image").
# Three stages: the browser SDK is built with Node, the wheel with uv (pinned dependencies
# exported from uv.lock with their hashes), and the runtime holds only Python and the wheel.

FROM node:20-bookworm-slim AS sdk
WORKDIR /src/widget
COPY widget/package.json widget/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY widget/ ./
RUN npm run --silent build

FROM python:3.11-slim-bookworm AS wheel
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
COPY . .
COPY --from=sdk /src/static/milepost/ static/milepost/
RUN uv build --wheel --out-dir /dist . \
 && uv export --frozen --no-dev --no-emit-project --format requirements-txt > /dist/requirements.txt

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MILEPOST_VAR_DIR=/var/lib/milepost \
    DEBUG=false
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/dist/requirements.txt \
 && pip install --no-cache-dir --no-deps /tmp/dist/milepost-*.whl \
 && rm -rf /tmp/dist \
 && useradd --system --home-dir /var/lib/milepost --create-home milepost
USER milepost
WORKDIR /var/lib/milepost
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=2)"
# Web: HTTP and WebSockets on one port. Run `milepost migrate` once per release, and the
# Celery worker from the same image: `celery -A milepost worker --beat`.
CMD ["uvicorn", "milepost.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--proxy-headers", "--no-access-log", "--timeout-worker-healthcheck", "60", "--timeout-keep-alive", "75"]
