#!/usr/bin/env bash
# Run every compiled *.test.js under a directory with node:test.
#
#   scripts/run-tests.sh DIR|FILE [node --test options...]
#   e.g. scripts/run-tests.sh dist/src --test-concurrency=2
#
# Node 20's `node --test` does not expand glob patterns ('dist/**/*.test.js' is taken literally),
# and given a directory it would also run every .js file under any folder named "test" (helpers such
# as dist/test/integration/harness.js). So the file list is built here, sorted for a stable order.
#
# Each test gets a timeout (BERTH_TEST_TIMEOUT_MS, default 300000) so a hung test fails instead of
# stalling CI.
set -euo pipefail

[[ $# -ge 1 ]] || { echo "usage: $0 DIR [node --test options...]" >&2; exit 2; }
dir=$1
shift
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -d $dir && ! -f $dir ]]; then
  echo "run-tests: $dir does not exist (run npm run build first?)" >&2
  exit 1
fi
# a single test file is run as given
mapfile -t files < <(find "$dir" -type f -name '*.test.js' | LC_ALL=C sort)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "run-tests: no *.test.js files under $dir" >&2
  exit 0
fi
exec node --test --test-timeout="${BERTH_TEST_TIMEOUT_MS:-300000}" "$@" "${files[@]}"
