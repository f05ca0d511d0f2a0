#!/usr/bin/env bash
# gate.sh runs the conformance suite against every peer for both profiles
# and fails when any spec ends in another state than ci/expected/PEER.json
# says: a spec that newly fails and one that newly passes both need a human
# look. Peers are the in-process ones (reference, httputil,
# httputil-failover) and the products configured in ci/peers/*.
#
# Usage: ci/gate.sh [flags] [PEER...]        (default: every peer)
#   --update        rewrite the expected verdicts from this run instead
#   --expected DIR  expected verdicts (default ci/expected)
#   --out DIR       reports, JUnit files, logs, matrix.md and matrix.html
#                   (default ci/out)
#   --profile P     run only profile P (repeatable; default seed and rfc9110)
#   --jobs N        runs at a time, 1 or 2 (default 2: about 10 minutes for
#                   every peer on 2 cores, 21 one at a time, same verdicts)
#   --bin PATH      a prebuilt proxyspec (default: built from this checkout)
#   --focus REGEXP  run only the specs whose ID matches (to try a change;
#                   the other expected specs then count as missing, and
#                   --update refuses it)
#
# A peer whose program is not installed is skipped with a line saying so,
# unless PROXYSPEC_REQUIRE_PEERS=1 (CI sets it after ci/install-peers.sh),
# which makes it an error.
#
# Exit status: 0 every verdict as expected (or updated), 1 a difference,
# 2 usage error, a missing required peer or a run that wrote no report.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
builtins=(reference httputil httputil-failover)
update=0
expected=$root/ci/expected
out=$root/ci/out
profiles=()
jobs=2
bin=${PROXYSPEC_BIN:-}
focus=
peers=()

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
	case $1 in
	--update) update=1 ;;
	--expected) expected=${2:?--expected needs a DIR}; shift ;;
	--out) out=${2:?--out needs a DIR}; shift ;;
	--profile) profiles+=("${2:?--profile needs seed or rfc9110}"); shift ;;
	--jobs) jobs=${2:?--jobs needs 1 or 2}; shift ;;
	--bin) bin=${2:?--bin needs a PATH}; shift ;;
	--focus) focus=${2:?--focus needs a REGEXP}; shift ;;
	-h | --help) usage ;;
	-*) echo "gate: unknown flag $1" >&2; usage ;;
	*) peers+=("$1") ;;
	esac
	shift
done
((${#profiles[@]})) || profiles=(seed rfc9110)
if ((update)) && [[ -n $focus ]]; then
	echo "gate: --update with --focus would drop every other spec from the expected files" >&2
	exit 2
fi
[[ $jobs == 1 || $jobs == 2 ]] || { echo "gate: --jobs must be 1 or 2, not $jobs" >&2; exit 2; }
if ((${#peers[@]} == 0)); then
	peers=("${builtins[@]}")
	for d in "$root"/ci/peers/*/; do
		[[ -f $d/cmd ]] && peers+=("$(basename "$d")")
	done
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [[ -z $bin ]]; then
	bin=$out/proxyspec
	echo "gate: building proxyspec"
	(cd "$root" && go build -o "$bin" ./cmd/proxyspec)
fi

is_builtin() {
	local b
	for b in "${builtins[@]}"; do [[ $1 == "$b" ]] && return 0; done
	return 1
}

# program prints the program a peer's cmd line starts, past `env VAR=...`.
program() {
	local words w
	read -r -a words <"$1"
	for w in "${words[@]}"; do
		[[ $w == env || $w == *=* ]] && continue
		echo "$w"
		return
	done
}

# Resolve the peers to run; skip (or refuse) those not installed.
run=()
for p in "${peers[@]}"; do
	if is_builtin "$p"; then
		run+=("$p")
		continue
	fi
	dir=$root/ci/peers/$p
	if [[ ! -f $dir/cmd ]]; then
		echo "gate: unknown peer $p (builtins: ${builtins[*]}; or a folder of ci/peers with a cmd file)" >&2
		exit 2
	fi
	prog=$(program "$dir/cmd")
	if ! command -v "$prog" >/dev/null 2>&1; then
		if [[ ${PROXYSPEC_REQUIRE_PEERS:-} == 1 ]]; then
			echo "gate: peer $p: $prog is not installed, and PROXYSPEC_REQUIRE_PEERS=1 (run ci/install-peers.sh)" >&2
			exit 2
		fi
		echo "gate: SKIP peer $p: $prog is not installed (ci/install-peers.sh installs it)"
		continue
	fi
	run+=("$p")
done

# run_one runs the suite against peer $1 for profile $2.
run_one() {
	local p=$1 profile=$2 base=$out/$1.$2 args start rc
	args=(run --profile "$profile" --report-json "$base.json" --junit-report "$base.junit.xml")
	[[ -n $focus ]] && args+=(--focus "$focus")
	if is_builtin "$p"; then
		args+=(--subject "$p")
	else
		local dir=$root/ci/peers/$p
		args+=(--subject-name "$p" --subject-cmd "$(<"$dir/cmd")" --subject-lacks "$(tr -d ' \n' <"$dir/lacks" 2>/dev/null || true)")
		[[ -f $dir/config.tmpl ]] && args+=(--subject-config "$dir/config.tmpl")
	fi
	rm -f "$base.json" "$base.junit.xml"
	start=$SECONDS
	rc=0
	(cd "$root" && "$bin" "${args[@]}") >"$base.log" 2>&1 || rc=$?
	echo "gate: $p ($profile): exit $rc in $((SECONDS - start)) s; log $base.log"
}

if ((${#run[@]} == 0)); then
	echo "gate: no peer to run"
	exit 0
fi
echo "gate: ${#run[@]} peer(s) x ${#profiles[@]} profile(s), $jobs at a time: ${run[*]}"
started=$SECONDS
reports=()
running=0
for p in "${run[@]}"; do
	for profile in "${profiles[@]}"; do
		reports+=("$out/$p.$profile.json")
		if ((jobs == 1)); then
			run_one "$p" "$profile"
			continue
		fi
		if ((running >= jobs)); then
			wait -n
			running=$((running - 1))
		fi
		run_one "$p" "$profile" &
		running=$((running + 1))
	done
done
wait
echo "gate: all runs done in $((SECONDS - started)) s"

missing=0
for r in "${reports[@]}"; do
	if [[ ! -s $r ]]; then
		echo "gate: no report $r: the run did not get to its specs; see ${r%.json}.log" >&2
		missing=1
	fi
done
((missing == 0)) || exit 2

# What each verdict was measured on: Debian updates its packages under a
# fixed suite, and a new package version can move a verdict. The versions
# are kept next to the expected files; a check names the ones that changed
# since, so that a difference can be told from a regression at a glance.
version_of() {
	local p=$1 prog path pkg
	if is_builtin "$p"; then
		echo "go $(cd "$root" && go env GOVERSION)"
		return
	fi
	prog=$(program "$root/ci/peers/$p/cmd")
	path=$(readlink -f "$(command -v "$prog")")
	pkg=$(dpkg -S "$path" 2>/dev/null | awk -F': ' 'NR == 1 { print $1 }') || true
	if [[ -n $pkg ]]; then
		echo "$pkg $(dpkg-query -W -f='${Version}' "$pkg")"
	else
		echo "$prog (not from a Debian package)"
	fi
}
for p in "${run[@]}"; do
	printf '%s: %s\n' "$p" "$(version_of "$p")"
done >"$out/versions.txt"
if ((update)); then
	# Keep the lines of peers this run did not cover.
	{
		cat "$out/versions.txt"
		if [[ -f $expected/VERSIONS ]]; then
			awk -F': ' 'NR == FNR { ran[$1] = 1; next } !($1 in ran)' "$out/versions.txt" "$expected/VERSIONS"
		fi
	} | sort >"$out/versions.new"
	mv "$out/versions.new" "$expected/VERSIONS"
elif [[ -f $expected/VERSIONS ]]; then
	while IFS= read -r line; do
		p=${line%%:*}
		was=$(awk -F': ' -v p="$p" '$1 == p' "$expected/VERSIONS")
		if [[ -n $was && $was != "$line" ]]; then
			echo "gate: note: $p changed since the expected verdicts were written: ${was#*: } then, ${line#*: } now"
		fi
	done <"$out/versions.txt"
fi

mode=--check
((update)) && mode=--update
rc=0
"$bin" report --markdown "$out/matrix.md" --html "$out/matrix.html" \
	--expected "$expected" "$mode" "${reports[@]}" || rc=$?
echo "gate: matrix in $out/matrix.md and $out/matrix.html"
exit $rc
