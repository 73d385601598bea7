# The API server (`codeinterp serve`). Build from the repository root:
#   docker build -f deploy/docker/api.Dockerfile -t codeinterp-api .
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /app/.venv && /app/.venv/bin/pip install --no-cache-dir '.[kubernetes]'
ENV PATH=/app/.venv/bin:$PATH CODEINTERP_DATA_DIR=/data
RUN useradd --uid 10001 --create-home codeinterp && mkdir /data && chown codeinterp /data
USER 10001
EXPOSE 8000
CMD ["codeinterp", "serve", "--host", "0.0.0.0", "--port", "8000"]
