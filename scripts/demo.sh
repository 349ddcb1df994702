#!/usr/bin/env bash
# A short demo of extsnap on the bundled sample VM, in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build >/dev/null
X=$PWD/build/extsnap
work=$(mktemp -d /tmp/extsnap-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
run() { printf '\n$ %s\n' "$*"; "$@"; }
echo "extsnap demo in $work"
run "$X" --version
run "$X" help
