#!/usr/bin/env bash
# Runs the whole conformance suite N times in a row against the reference
# proxy and compares the failures seen with the failures expected by
# chance: the statistical specs state their false-fail rate (alpha), every
# other spec must never fail against the reference. Not part of default CI.
#
#   ci/flakes.sh [N]          (default 50; PROFILES="seed rfc9110" by default)
#
# The binary is built once. Exit status: 0 when the observed failures of
# deterministic specs are 0 and those of statistical specs are plausible
# (at most the expected count plus three standard deviations, and at most
# one when that is below one), 1 otherwise, 2 on setup problems.
set -uo pipefail
cd "$(dirname "$0")/.."

n=${1:-50}
case $n in '' | *[!0-9]* | 0) echo "usage: $0 [N>0]" >&2; exit 2 ;; esac
profiles=${PROFILES:-seed rfc9110}
command -v jq >/dev/null || { echo "flakes: jq is needed to read the JSON reports" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/proxyspec
go build -o "$bin" ./cmd/proxyspec || exit 2

# alpha of each statistical spec, by ID: from the report if a spec records
# it, else from the "alpha X" its title states in the catalogue.
alphas() { # profile
	"$bin" list --json --profile "$1" |
		jq -r '.[] | select(.title | test("alpha [0-9.eE+-]+")) |
			"\(.id) \(.title | capture("alpha (?<a>[0-9.eE+-]+)").a)"'
}

runs=0 bad_runs=0
: >"$work/failures"
for p in $profiles; do
	alphas "$p" >"$work/alpha-$p" || exit 2
	for i in $(seq 1 "$n"); do
		rep=$work/report-$p-$i.json
		"$bin" run --profile "$p" --report-json "$rep" >"$work/out-$p-$i.txt" 2>&1
		code=$?
		runs=$((runs + 1))
		if [ ! -s "$rep" ]; then
			echo "flakes: run $i ($p) exited $code without a report:" >&2
			tail -20 "$work/out-$p-$i.txt" >&2
			exit 2
		fi
		[ "$code" -ne 0 ] && bad_runs=$((bad_runs + 1))
		jq -r --arg p "$p" '.specs[] | select(.state == "failed" or .state == "setup-failed") | "\($p) \(.id) \(.state)"' "$rep" >>"$work/failures"
		jq -r '.suite_failures[]? | "suite " + .' "$rep" >>"$work/failures"
		printf '\rflakes: %s run %d/%d, %d failing runs so far' "$p" "$i" "$n" "$bad_runs" >&2
	done
	echo >&2
done

# Expected false failures: N runs times the sum of alphas per profile.
expected=0
for p in $profiles; do
	e=$(awk -v n="$n" '{s += $2} END {printf "%.6g", n * s}' "$work/alpha-$p")
	expected=$(awk -v a="$expected" -v b="$e" 'BEGIN {printf "%.6g", a + b}')
done

echo
echo "runs: $runs ($n per profile: $profiles), runs with a non-zero exit: $bad_runs"
printf '%-10s %-44s %10s %10s\n' profile spec expected observed
status=0
for p in $profiles; do
	while read -r id alpha; do
		obs=$(grep -c "^$p $id " "$work/failures")
		exp=$(awk -v n="$n" -v a="$alpha" 'BEGIN {printf "%.3g", n * a}')
		printf '%-10s %-44s %10s %10s  (alpha %s)\n' "$p" "$id" "$exp" "$obs" "$alpha"
		# Plausible: within mean + 3 sd of a binomial(n, alpha), and at
		# least one failure allowed when that bound is below one.
		if ! awk -v n="$n" -v a="$alpha" -v o="$obs" 'BEGIN {m = n * a; b = m + 3 * sqrt(n * a * (1 - a)); if (b < 1) b = 1; exit !(o <= b)}'; then
			status=1
		fi
	done <"$work/alpha-$p"
done
det=$(awk 'NR == FNR {stat[$1 " " $2] = 1; next} !(($1 " " $2) in stat)' \
	<(for p in $profiles; do sed "s/^/$p /" "$work/alpha-$p"; done) "$work/failures")
det_count=$(printf '%s' "$det" | grep -c . || true)
printf '%-10s %-44s %10s %10s\n' all "deterministic specs (and suite failures)" 0 "$det_count"
echo "expected false failures in total: $expected; observed: $(grep -c . "$work/failures" || true)"
if [ "$det_count" -gt 0 ]; then
	echo
	echo "failures of specs that must never fail against the reference (profile, spec, state; count):"
	printf '%s\n' "$det" | sort | uniq -c | sort -rn
	status=1
fi
exit $status
