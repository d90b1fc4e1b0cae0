# The forum server image. Built by `docker compose up` (see compose.yaml and README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY forum ./forum
COPY raters ./raters
COPY feeds ./feeds
COPY clients ./clients
RUN pip install --no-cache-dir . && useradd --system --home /data forum && mkdir -p /data && chown forum /data
USER forum
ENV FORUM_HOST=0.0.0.0 FORUM_PORT=8000 FORUM_DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["forum", "serve"]
