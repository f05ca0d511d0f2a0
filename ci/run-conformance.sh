#!/usr/bin/env bash
# run-conformance.sh runs the proxyspec conformance suite against your
# reverse proxy in any CI: it installs proxyspec, runs the suite with your
# proxy started through the command contract (a fresh process per spec, on
# a loopback port the kit picks, configured from your template), and leaves
# JSON and JUnit reports and an HTML matrix in $OUT for the CI to keep.
# ci/github-actions.yml does the same steps as a GitHub Actions workflow.
#
# Settings (environment):
#   PROXY_CMD      required: the command line, a Go template over the
#                  topology, e.g. './bin/myproxy -listen {{.Listen}} -config {{.ConfigFile}}'
#   PROXY_CONFIG   a config file template rendered to {{.ConfigFile}} (optional)
#   PROXY_LACKS    comma-separated features your proxy cannot express (optional;
#                  see `proxyspec run -h`), reported "not supported"
#   PROXY_NAME     the name in reports (default: proxy)
#   PROFILES       profiles to run (default: rfc9110; add seed for the seed's rules)
#   EXPECTED       a dir of expected verdicts (NAME.json, written with
#                  `proxyspec report --expected DIR --update`): when set, the
#                  job fails on any change of verdict rather than on any
#                  failing MUST spec, so known deviations do not block a merge
#                  while regressions and fixes both show up
#   OUT            where reports go (default: proxyspec-reports)
#   PROXYSPEC_BIN  a proxyspec binary to use instead of installing one
#   PROXYSPEC_VERSION  the version `go install` fetches (default: latest)
#
# Exit status: without EXPECTED, 0 when every MUST spec passed in every
# profile, 1 when one failed, 2 on a setup error; with EXPECTED, 0 when every
# verdict is as expected, 1 on a difference, 2 on an error.
set -euo pipefail

: "${PROXY_CMD:?set PROXY_CMD to the command line of your proxy, see the header of this script}"
name=${PROXY_NAME:-proxy}
out=${OUT:-proxyspec-reports}
read -r -a profiles <<<"${PROFILES:-rfc9110}"
mkdir -p "$out"

bin=${PROXYSPEC_BIN:-}
if [[ -z $bin ]]; then
	go install "github.com/proxyspec/proxyspec/cmd/proxyspec@${PROXYSPEC_VERSION:-latest}"
	bin=$(go env GOPATH)/bin/proxyspec
fi

status=0
reports=()
for profile in "${profiles[@]}"; do
	args=(run --profile "$profile" --subject-name "$name" --subject-cmd "$PROXY_CMD"
		--report-json "$out/$name.$profile.json" --junit-report "$out/$name.$profile.junit.xml")
	[[ -n ${PROXY_CONFIG:-} ]] && args+=(--subject-config "$PROXY_CONFIG")
	[[ -n ${PROXY_LACKS:-} ]] && args+=(--subject-lacks "$PROXY_LACKS")
	echo "== proxyspec: $name, profile $profile"
	rc=0
	"$bin" "${args[@]}" 2>&1 | tee "$out/$name.$profile.log" || rc=${PIPESTATUS[0]}
	((rc > status)) && status=$rc
	if [[ -s $out/$name.$profile.json ]]; then
		reports+=("$out/$name.$profile.json")
	else
		echo "proxyspec: no report for profile $profile (exit $rc); see $out/$name.$profile.log" >&2
		status=2
	fi
done
((${#reports[@]})) || exit 2

check=()
[[ -n ${EXPECTED:-} ]] && check=(--expected "$EXPECTED" --check)
rc=0
"$bin" report --markdown "$out/matrix.md" --html "$out/matrix.html" "${check[@]}" "${reports[@]}" || rc=$?
echo "proxyspec: reports in $out/ (JSON, JUnit, logs, matrix.html)"
if ((${#check[@]})); then
	# The expected verdicts decide, unless something could not be set up.
	((status == 2)) && exit 2
	exit $rc
fi
((rc == 2)) && exit 2
exit $status
