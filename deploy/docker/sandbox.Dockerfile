# A sandbox pod: `codeinterp sandbox-host` serving one session with the bubblewrap backend (its
# kernels in their own namespaces, uids and cgroups inside the pod). Build from the repository root:
#   docker build -f deploy/docker/sandbox.Dockerfile -t codeinterp-sandbox .
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap libseccomp2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /app/.venv && /app/.venv/bin/pip install --no-cache-dir . \
    && python -m venv /app/.sandbox-env \
    && /app/.sandbox-env/bin/pip install --no-cache-dir -r src/codeinterp/sandbox/requirements.txt \
    && MPLCONFIGDIR=/app/.sandbox-env/mplconfig /app/.sandbox-env/bin/python -c 'import matplotlib.pyplot' \
    && chmod -R a+rX /app/.sandbox-env/mplconfig
ENV PATH=/app/.venv/bin:$PATH CODEINTERP_SANDBOX_ENV=/app/.sandbox-env CODEINTERP_DATA_DIR=/data \
    CODEINTERP_SANDBOX_MAX_SESSIONS=1 CODEINTERP_SANDBOX_WARM_SESSIONS=1
EXPOSE 8100
CMD ["codeinterp", "sandbox-host", "--listen", "0.0.0.0:8100"]
