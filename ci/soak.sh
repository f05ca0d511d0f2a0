#!/usr/bin/env bash
# Soak test of the reference proxy: concurrent GETs and POSTs against fake
# backends failing at random, checked request by request, with goroutines,
# open descriptors and memory compared between the first and last rounds.
#
#   ci/soak.sh [REQUESTS [DURATION]]    (default 100000 requests, 5m)
#
# Whichever bound is reached first ends the run. The test prints the
# outcomes, the faults met and the resource figures before and after.
set -euo pipefail
cd "$(dirname "$0")/.."

requests=${1:-100000}
duration=${2:-5m}
export PROXYSPEC_SOAK_REQUESTS=$requests PROXYSPEC_SOAK_DURATION=$duration
# The go test timeout leaves room for the last round and the settling.
go test ./internal/soak -run '^TestSoak$' -count=1 -v -timeout 15m
