#!/usr/bin/env bash
# Check torch_fwdad against several torch releases: one venv per version, then import,
# `python -m codegen --check`, `python -m torch_fwdad` and a representative subset of the tests.
# Prints one markdown table row per version (the table in docs/compatibility.md comes from here).
#
#   tools/check_torch_versions.sh 2.12.1 2.9.1      # versions to check
#   tools/check_torch_versions.sh current            # the torch of the python on PATH, no venv
#
# Releases other than the pinned CPU build come from the registry as CUDA builds (several GB
# with their nvidia-* dependencies); they run on CPU. VENV_ROOT (default /tmp/torch_fwdad-venvs)
# holds the venvs, kept between runs so a second run skips the install.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv_root=${VENV_ROOT:-/tmp/torch_fwdad-venvs}
tests=${TESTS:-"tests/test_engine.py tests/test_custom_ops.py tests/test_custom_jvp.py tests/test_public_functions.py tests/test_codegen.py tests/test_second_order_vision.py"}
versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=(current)

summary() {  # the last line pytest prints, e.g. "3 failed, 120 passed in 40.2s"
    grep -E '(passed|failed|error)' "$1" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//'
}

echo "| torch | install | import | codegen --check | python -m torch_fwdad | tests |"
echo "|---|---|---|---|---|---|"
for version in "${versions[@]}"; do
    venv="$venv_root/torch-$version"
    log="$venv_root/torch-$version.log"
    mkdir -p "$venv_root"
    install=ok
    if [ "$version" = current ]; then
        python=$(command -v python)
        version=$("$python" -c "import torch; print(torch.__version__)")
    elif [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
        python -m venv "$venv" && "$venv/bin/pip" install --quiet "torch==$version" pyyaml numpy scipy \
            pytest pytest-timeout pytest-xdist expecttest networkx >"$log" 2>&1 || install=failed
    fi
    python=${python:-$venv/bin/python}
    if [ "$install" != ok ]; then
        echo "| $version | failed (see $log) | | | | |"
        continue
    fi
    run() { (cd "$repo" && PYTHONPATH="$repo" timeout "${TIMEOUT:-1800}" "$python" "$@") >>"$log" 2>&1; }
    result() { if "$@"; then echo ok; else echo "fails"; fi; }
    imported=$(result run -W error -c "import torch_fwdad")
    codegen=$(result run -m codegen --check)
    report=$(result run -m torch_fwdad)
    # shellcheck disable=SC2086
    (cd "$repo" && PYTHONPATH="$repo" timeout "${TIMEOUT:-1800}" "$python" -m pytest -q -p no:cacheprovider \
        --timeout=600 -n "${JOBS:-1}" $tests) >"$log.pytest" 2>&1
    unset python
    echo "| $version | ok | $imported | $codegen | $report | $(summary "$log.pytest") |"
done
