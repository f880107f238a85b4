# Shared settings for localstack/install, localstack/up and localstack/down. Sourced, not run.
# Everything lives under one cache directory so a CI machine can keep it between runs and a
# developer can delete it to start over.

BERTH_CACHE="${BERTH_CACHE:-$HOME/.cache/berth}"
# The pinned versions. LocalStack's newer dependencies break it, so pip only sees packages that
# were uploaded before the pin date (see shared design notes on tooling).
LOCALSTACK_VERSION="2026.3.0"
LOCALSTACK_UPLOADED_PRIOR_TO="2026-03-25T00:00:00Z"
MOTO_VERSION="5.2.5"
# LocalStack 2026.3.0 imports warnings.deprecated, which only Python >= 3.13 has.
PYTHON_VERSION="${BERTH_PYTHON_VERSION:-3.13}"

# Two venvs: LocalStack pins its dependencies by upload date, and moto 5.2.5 is newer than that
# date, so they cannot share one.
LS_VENV="$BERTH_CACHE/localstack-$LOCALSTACK_VERSION"
MOTO_VENV="$BERTH_CACHE/moto-$MOTO_VERSION"
STAMP_NAME=".berth-installed"
# The state dir holds PIDs, logs and LocalStack's working files for one running pair.
STATE_DIR="${BERTH_LOCALSTACK_STATE:-$BERTH_CACHE/localstack-state}"
LOCALSTACK_PORT="${BERTH_LOCALSTACK_PORT:-4566}"
MOTO_PORT="${BERTH_MOTO_PORT:-5566}"

log() { printf 'localstack: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Finds a Python >= 3.13 interpreter: pyenv's if present, else one on PATH.
find_python() {
    local candidates=()
    if command -v pyenv >/dev/null 2>&1; then
        local v
        for v in $(pyenv versions --bare 2>/dev/null | grep -E "^${PYTHON_VERSION}(\.|$)" | sort -V -r); do
            candidates+=("$(pyenv root)/versions/$v/bin/python3")
        done
    fi
    candidates+=("python${PYTHON_VERSION}" python3.14 python3)
    local p
    for p in "${candidates[@]}"; do
        if command -v "$p" >/dev/null 2>&1 &&
            "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null; then
            command -v "$p"
            return 0
        fi
    done
    return 1
}
