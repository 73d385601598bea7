#!/usr/bin/env bash
# Regenerates the sandbox's lock (every version pinned, what setup installs) from
# src/codeinterp/sandbox/requirements.txt, for Python 3.11 on x86_64 Linux. Needs uv
# (`pip install uv`); commit both files, then `bash scripts/setup.sh` installs the new lock.
set -euo pipefail
cd "$(dirname "$0")/.."
uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    src/codeinterp/sandbox/requirements.txt -o src/codeinterp/sandbox/requirements.lock
