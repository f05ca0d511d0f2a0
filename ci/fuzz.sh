#!/usr/bin/env bash
# Runs every fuzz target of the packages that parse untrusted input for a
# bounded time each and prints the executions per target.
#
#   ci/fuzz.sh [SECONDS]     (default 10 per target)
#
# A failing input is written by Go to the package's testdata/fuzz/FuzzX/
# directory: commit it with the fix, and it becomes a regression test that
# every `go test` runs. Exit status: 0 when no target failed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
pkgs=(./proxy ./fakebackend)
# Two workers: the machines running this are shared.
par=${PROXYSPEC_FUZZ_PARALLEL:-2}

status=0
printf '%-14s %-24s %12s %10s  %s\n' package target execs per-sec result
for pkg in "${pkgs[@]}"; do
	targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz') || { echo "listing $pkg failed" >&2; exit 2; }
	for t in $targets; do
		log=$(mktemp)
		if go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "${secs}s" -parallel "$par" >"$log" 2>&1; then
			result=ok
		else
			result=FAIL
			status=1
		fi
		# The last progress line holds the total: "fuzz: elapsed: 10s, execs: 12345 (1234/sec), ...".
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
		execs=${execs:-0}
		printf '%-14s %-24s %12s %10s  %s\n' "$pkg" "$t" "$execs" "$((execs / secs))" "$result"
		if [ "$result" = FAIL ]; then
			sed 's/^/    /' "$log" | tail -25
		fi
		rm -f "$log"
	done
done
exit $status
