#!/usr/bin/env bash
# Regenerate the committed coverage report of this checkout (docs/coverage/): the full
# run, both parts, without and with torch_fwdad: under a minute on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m torch_fwdad.report --jobs "${JOBS:-2}" --output docs/coverage "$@"
