package selftest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/internal/mutant"
	"github.com/proxyspec/proxyspec/internal/reference"
)

// The parent hands a child its run through these variables.
const (
	envMutant  = "SELFTEST_MUTANT"  // a mutant's name, or "reference"
	envProfile = "SELFTEST_PROFILE" // the profile to run
	envReport  = "SELFTEST_REPORT"  // where the child writes its JSON report
	envScale   = "SELFTEST_SCALE"   // multiplies the default proxy timeouts
)

// scaled lists the subjects whose runs get the default proxy timeouts
// multiplied. A quarter-timeout mutant must reach a healthy backend within
// its quarter in the specs it passes: at the defaults that is 50 ms to
// connect and 125 ms for an answer, which a stall of a loaded machine can
// exceed. Four times the defaults give it the reference's own margins.
var scaled = map[string]int{
	"read-timeout-quarter":    4,
	"connect-timeout-quarter": 4,
}

const (
	seed = conformance.ProfileSeed
	rfc  = conformance.ProfileRFC9110

	// children is how many runs go at once: one per core of the machine
	// the suite is tuned for. A run mostly waits on loopback, yet more at
	// once would eat into the specs' timing margins.
	children = 2
	// childTimeout bounds one run; a whole profile takes seconds.
	childTimeout = 90 * time.Second
)

// A pin is one run of the suite against a subject in one profile, and the
// exact set of specs it must fail: a spec outside the set failing, or one
// in it passing, fails TestMutants. The reference must fail nothing but
// its known deviations.
//
// A mutant runs in the seed profile. It runs in rfc9110 too where that run
// can tell something the seed run cannot: its defect breaks an rfc9110-only
// spec, or a spec whose expectations differ by profile. Where the specs it
// fails judge both profiles alike (keep-connection-listed, query-dropped,
// informational-dropped, status-normalized, set-cookie-combined,
// error-detail-leaked, prefix-naive, head-as-get, end-to-end-reordered,
// target-normalized, open-proxy, prefix-stripped,
// transfer-encoding-relayed; connect-timeout-4x and the quarter timeouts,
// whose rfc9110 bounds are only looser) or only seed specs
// (backend-5xx-failover, post-not-failed-over, retry-same-backend,
// round-robin-per-attempt), a second run would only cost time. A mutant
// built for an rfc9110 spec runs in rfc9110 alone when its seed run would
// fail only specs that other mutants' seed runs already fail
// (skewed-5-points, error-detail-in-body, te-trailers-kept, via-malformed).
type pin struct {
	subject string
	profile conformance.Profile
	fails   []string
}

var pins = []pin{
	{"reference", seed, nil},
	// net/http's chunked reader rejects whitespace before a chunk
	// extension's ';' (RFC 9112 §7.1.1 allows it), so the reference answers
	// 502: a known deviation, the spec says so.
	{"reference", rfc, []string{"framing/request/chunk-extension-whitespace"}},

	// The slow runs first, so that the quick ones fill the other slot.
	// scenario/timeout/read-hang bounds the wait more loosely than the
	// timeouts specs: it passes.
	{"read-timeout-4x", seed, []string{
		"failover/read-timeout", "timeouts/read-header", "timeouts/read-body-gap", "timeouts/read-body-gap-chunked",
	}},
	{"read-timeout-4x", rfc, []string{
		"timeouts/read-header", "timeouts/read-body-gap", "timeouts/read-body-gap-chunked",
	}},
	{"connect-timeout-4x", seed, []string{"failover/connect-timeout", "timeouts/connect"}},
	{"read-timeout-quarter", seed, []string{
		"timeouts/read-header", "timeouts/read-body-gap", "timeouts/read-body-gap-chunked", "timeouts/not-early",
		"timeouts/read-gaps",
	}},
	{"connect-timeout-quarter", seed, []string{"timeouts/connect"}},

	// Request header rules.
	{"forward-connection", seed, []string{
		"hop-by-hop/request/connection", "hop-by-hop/request/connection-list", "hop-by-hop/request/connection-lines",
		"hop-by-hop/request/connection-case", "hop-by-hop/request/connection-whitespace", "hop-by-hop/request/upgrade",
		"scenario/hop-by-hop/request-connection-listed",
	}},
	{"forward-connection", rfc, []string{
		"hop-by-hop/request/connection", "hop-by-hop/request/connection-list", "hop-by-hop/request/connection-lines",
		"hop-by-hop/request/connection-case", "hop-by-hop/request/connection-whitespace",
		// The rfc9110 run names these in Connection, which then reaches
		// the backend.
		"hop-by-hop/request/keep-alive", "hop-by-hop/request/te", "hop-by-hop/request/te-trailers",
		"scenario/hop-by-hop/request-connection-listed",
	}},
	{"keep-connection-listed", seed, []string{
		"hop-by-hop/request/connection", "hop-by-hop/request/connection-list", "hop-by-hop/request/connection-lines",
		"hop-by-hop/request/connection-case", "hop-by-hop/request/connection-whitespace",
		"scenario/hop-by-hop/request-connection-listed",
	}},
	// RFC 9110 §11.7.4 lets a proxy relay credentials: seed only.
	{"leak-proxy-authorization", seed, []string{"hop-by-hop/request/proxy-authorization"}},
	// The seed strips its list whatever Connection says; rfc9110 asks the
	// same (SHOULD) of the unlisted ones.
	{"hop-by-hop-list-kept", seed, []string{
		"hop-by-hop/request/keep-alive", "hop-by-hop/request/te", "hop-by-hop/request/te-trailers",
		"hop-by-hop/request/proxy-authorization", "hop-by-hop/request/trailer", "hop-by-hop/request/trailers",
		"hop-by-hop/request/proxy-connection",
	}},
	{"hop-by-hop-list-kept", rfc, []string{
		"hop-by-hop/request/keep-alive-unlisted", "hop-by-hop/request/te-unlisted", "hop-by-hop/request/upgrade-unlisted",
		"hop-by-hop/request/proxy-connection",
	}},
	// Only rfc9110 lets a proxy send its own TE: trailers, and asks it to
	// name TE in Connection: that is the check this mutant is for.
	{"te-trailers-kept", rfc, []string{"hop-by-hop/request/te-trailers"}},
	{"end-to-end-reordered", seed, []string{"forwarded/end-to-end-kept"}},
	{"target-normalized", seed, []string{"target/unchanged", "prefix/query-kept"}},
	{"open-proxy", seed, []string{"target/absolute-form", "target/host-not-routed", "method/connect"}},
	// Both directions; every spec sending or receiving a chunked body
	// sees two Transfer-Encoding lines.
	{"transfer-encoding-relayed", seed, []string{
		"hop-by-hop/request/transfer-encoding", "hop-by-hop/response/transfer-encoding",
		"body/request/chunked", "body/response/chunked",
		"framing/request/chunked", "framing/request/chunked-extensions", "framing/request/chunked-trailers",
		"framing/response/single-framing-header",
		"security/request/cl-te", "security/request/te-cl", "security/request/te-case",
		"security/request/te-trailing-whitespace", "security/request/te-leading-tab",
		"security/request/bare-lf-in-field", "security/request/connection-transfer-encoding",
		// The client cannot read a head with two codings, so the stalled
		// and the cut chunked bodies end at once.
		"timeouts/read-body-gap-chunked", "scenario/truncated/reset-mid-body-chunked",
	}},
	// A gateway may forward the client's Host: seed only.
	{"host-kept", seed, []string{"forwarded/host/replaced"}},
	// X-Forwarded-For is not RFC 9110's, and RFC 9110 judges a Via only
	// when one is sent: seed only.
	{"xff-replaced", seed, []string{"forwarded/x-forwarded-for/appended", "forwarded/x-forwarded-for/multiple-lines"}},
	{"xff-missing", seed, []string{
		"forwarded/x-forwarded-for/added", "forwarded/x-forwarded-for/appended", "forwarded/x-forwarded-for/multiple-lines",
	}},
	{"via-missing", seed, []string{"forwarded/via/added", "forwarded/via/appended", "forwarded/via/http10-client"}},
	// The rfc9110 run parses Via; the seed run compares text, as for
	// via-missing.
	{"via-malformed", rfc, []string{"forwarded/via/added", "forwarded/via/appended", "forwarded/via/http10-client"}},
	{"query-dropped", seed, []string{
		"forward/get-basic", "prefix/matching", "prefix/query-kept",
		"target/unchanged", "target/absolute-form", "target/host-not-routed",
		"scenario/prefix/fall-through",
	}},
	// Pooled upstream connections are an RFC 9110 proxy's right: the
	// rfc9110 run must find nothing, which also holds the pooled mode to
	// every other spec.
	{"keep-alive-upstream", seed, []string{"upstream/connection-close", "upstream/one-request-per-connection"}},
	{"keep-alive-upstream", rfc, nil},

	// Response rules.
	{"no-response-stripping", seed, []string{
		"hop-by-hop/response/connection-listed", "hop-by-hop/response/connection-listed-close",
		"hop-by-hop/response/connection-lines", "hop-by-hop/response/connection-case",
		"scenario/hop-by-hop/response-connection-listed",
		"hop-by-hop/response/keep-alive", "hop-by-hop/response/upgrade", "hop-by-hop/response/proxy-connection",
		"hop-by-hop/response/proxy-authenticate", "hop-by-hop/response/trailer", "scenario/hop-by-hop/response-seed-list",
	}},
	{"no-response-stripping", rfc, []string{
		"hop-by-hop/response/connection-listed", "hop-by-hop/response/connection-listed-close",
		"hop-by-hop/response/connection-lines", "hop-by-hop/response/connection-case",
		"scenario/hop-by-hop/response-connection-listed",
		"hop-by-hop/response/keep-alive", "hop-by-hop/response/upgrade", "hop-by-hop/response/proxy-connection",
	}},
	{"informational-dropped", seed, []string{"informational/103-forwarded"}},
	{"status-normalized", seed, []string{
		"body/response/no-body-204", "body/response/no-body-204-with-length", "informational/not-final",
	}},
	{"set-cookie-combined", seed, []string{"forwarded/end-to-end-kept-response"}},
	{"error-detail-leaked", seed, []string{"502/no-leak"}},
	// The seed's 502 has a fixed body, so there the leak only breaks that
	// (in every 502 spec); rfc9110 leaves the body free and judges the leak.
	{"error-detail-in-body", rfc, []string{"502/no-leak"}},
	{"status-503", seed, []string{
		"502/no-backends", "502/all-refused", "502/all-fail", "502/invalid-response", "502/no-leak",
		"failover/all-tried", "failover/post-not-replayed", "timeouts/connect", "timeouts/read-header",
		"framing/response/conflicting-content-length", "framing/response/content-length-list",
		"framing/response/content-length-sign", "framing/response/content-length-not-a-number",
		"scenario/failover/all-down", "scenario/timeout/read-hang",
	}},
	// RFC 9110 leaves 502, 503 or 504 to the proxy, but a response with
	// invalid framing must be answered 502 (RFC 9112 §6.3).
	{"status-503", rfc, []string{
		"framing/response/conflicting-content-length", "framing/response/content-length-list",
		"framing/response/content-length-sign", "framing/response/content-length-not-a-number",
	}},
	{"truncation-hidden", seed, []string{
		"truncation/chunked", "timeouts/read-body-gap-chunked", "scenario/truncated/reset-mid-body-chunked",
	}},
	{"truncation-hidden", rfc, []string{
		"truncation/chunked", "timeouts/read-body-gap-chunked", "scenario/truncated/reset-mid-body-chunked",
	}},

	// Selection, failover, timeouts, prefix.
	{"no-failover", seed, []string{
		"failover/refused", "failover/connect-timeout", "failover/reset", "failover/read-timeout", "failover/all-tried",
		"failover/post-refused", "round-robin/one-down", "timeouts/connect",
		"scenario/failover/get-after-reset", "scenario/failover/recovery", "scenario/failover/refused-first",
		"scenario/failover/two-down",
	}},
	{"no-failover", rfc, []string{"scenario/failover/refused-first", "scenario/failover/two-down"}},
	{"post-replayed", seed, []string{"failover/post-not-replayed"}},
	{"post-replayed", rfc, []string{"failover/post-not-replayed", "scenario/failover/post-not-replayed"}},
	{"skewed-round-robin", seed, []string{
		"round-robin/sequential", "round-robin/concurrent", "round-robin/one-down",
		// Both send two requests and count on one of them starting at a.
		"failover/reset", "failover/read-timeout",
	}},
	{"skewed-round-robin", rfc, []string{"balance/statistical"}},
	// The smallest skew balance/statistical claims to catch.
	{"skewed-5-points", rfc, []string{"balance/statistical"}},
	// Fair but not round-robin: the seed's exact specs catch it, and the
	// statistical spec must not blame it. Its generator has a fixed seed.
	{"random-start", seed, []string{
		"round-robin/sequential", "round-robin/one-down", "round-robin/concurrent",
		"failover/reset", "failover/read-timeout",
	}},
	{"random-start", rfc, nil},
	// Exact round-robin while every backend answers.
	{"round-robin-per-attempt", seed, []string{"round-robin/one-down", "failover/reset", "failover/read-timeout"}},
	{"retry-same-backend", seed, []string{
		"failover/reset", "failover/read-timeout", "failover/all-tried", "failover/post-not-replayed",
		"scenario/timeout/read-hang",
	}},
	// Only the seed asks for a timeout on each gap rather than the whole.
	{"read-timeout-total", seed, []string{"timeouts/read-gaps"}},
	{"backend-5xx-failover", seed, []string{"failover/5xx-relayed"}},
	{"prefix-naive", seed, []string{"prefix/non-matching", "prefix/dot-segments"}},
	{"head-as-get", seed, []string{"body/response/head"}},
	{"via-version-fixed", seed, []string{"forwarded/via/http10-client"}},
	// rfc9110 judges the received-protocol of any Via sent, not its text.
	{"via-version-fixed", rfc, []string{"forwarded/via/http10-client"}},
	{"post-not-failed-over", seed, []string{"failover/post-refused"}},
	{"prefix-stripped", seed, []string{
		"prefix/matching", "prefix/not-stripped", "prefix/query-kept", "scenario/prefix/fall-through",
	}},
	{"prefix-ignored", seed, []string{"prefix/non-matching", "prefix/dot-segments", "scenario/prefix/fall-through"}},
	{"prefix-ignored", rfc, []string{"prefix/non-matching", "prefix/dot-segments"}},
}

// TestMutants runs the suite against the reference and against every
// mutant, each in a child process (Ginkgo's RunSpecs runs once per
// process), and checks that each fails exactly the specs pinned for it:
// that the suite catches every defect, and blames only the specs the defect
// breaks. The reference runs first: a spec it fails is reported once, by
// its own pin, and left out of the mutants' comparisons, where it would say
// nothing about their defects.
func TestMutants(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	checkPins(t)
	// SELFTEST_REPORTS keeps the children's reports in a directory of
	// one's choice, to read the evidence when re-pinning.
	dir := os.Getenv("SELFTEST_REPORTS")
	if dir == "" {
		dir = t.TempDir()
	}
	slots := make(chan struct{}, children)
	var (
		mu   sync.Mutex
		base = map[conformance.Profile]map[string]bool{} // the reference's failures
	)
	runs := func(t *testing.T, reference bool) {
		for _, p := range pins {
			if (p.subject == "reference") != reference {
				continue
			}
			t.Run(p.subject+"/"+string(p.profile), func(t *testing.T) {
				t.Parallel()
				slots <- struct{}{}
				defer func() { <-slots }()
				report := filepath.Join(dir, p.subject+"."+string(p.profile)+".json")
				rep, out := runChild(t, exe, p, report)
				if strings.Contains(out, "WARNING: DATA RACE") {
					t.Errorf("%s, profile %s: the race detector fired:\n%s", p.subject, p.profile, tail(out, 8000))
				}
				mu.Lock()
				known := base[p.profile]
				if reference {
					base[p.profile] = failures(rep)
				}
				mu.Unlock()
				if msg := compare(p, rep, known); msg != "" {
					t.Errorf("%s, profile %s:\n%s", p.subject, p.profile, msg)
					if len(rep.SuiteFailures) > 0 {
						t.Logf("child output (tail):\n%s", tail(out, 4000))
					}
				}
			})
		}
	}
	t.Run("reference", func(t *testing.T) { runs(t, true) })
	t.Run("mutant", func(t *testing.T) { runs(t, false) })
}

// checkPins checks the table itself: every mutant is pinned and some spec
// catches it, every pin names a subject that exists, and no run is pinned
// twice.
func checkPins(t *testing.T) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range pins {
		key := p.subject + "/" + string(p.profile)
		if seen[key] {
			t.Errorf("%s is pinned twice", key)
		}
		seen[key] = true
		if _, ok := mutant.Lookup(p.subject); !ok && p.subject != "reference" {
			t.Errorf("pin for %q: no such mutant", p.subject)
		}
	}
	for name := range scaled {
		if _, ok := mutant.Lookup(name); !ok {
			t.Errorf("scaled timeouts for %q: no such mutant", name)
		}
	}
	caught := map[string]bool{}
	for _, p := range pins {
		caught[p.subject] = caught[p.subject] || len(p.fails) > 0
	}
	for _, m := range mutant.All() {
		if !seen[m.Name+"/"+string(seed)] && !seen[m.Name+"/"+string(rfc)] {
			t.Errorf("mutant %s (%s) has no pin", m.Name, m.Defect)
		}
		if !caught[m.Name] {
			t.Errorf("mutant %s fails no spec in any profile: the suite has a hole (%s)", m.Name, m.Defect)
		}
	}
}

// runChild runs the suite for p in a child process and returns its report
// and output. The child's exit status is not looked at: it fails whenever a
// spec fails, which is the point for a mutant; the report says which.
func runChild(t *testing.T, exe string, p pin, report string) (conformance.Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), childTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe,
		"-test.run=^TestMutantChild$", "-test.count=1",
		"-test.timeout="+(childTimeout-5*time.Second).String(),
		"-ginkgo.no-color")
	cmd.Env = append(os.Environ(),
		envMutant+"="+p.subject, envProfile+"="+string(p.profile), envReport+"="+report,
		envScale+"="+strconv.Itoa(max(scaled[p.subject], 1)))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A report left by an earlier run in a kept directory must not pass
	// for this one's.
	if err := os.Remove(report); err != nil && !os.IsNotExist(err) {
		t.Fatalf("removing an old report: %v", err)
	}
	err := cmd.Run()
	rep, rerr := conformance.ReadReport(report)
	if rerr != nil {
		t.Fatalf("%s, profile %s: no report (child: %v): %v\nchild output (tail):\n%s",
			p.subject, p.profile, err, rerr, tail(out.String(), 4000))
	}
	return rep, out.String()
}

// failures are the specs of rep that failed or could not be set up.
func failures(rep conformance.Report) map[string]bool {
	failed := map[string]bool{}
	for _, s := range rep.Specs {
		if s.State == conformance.StateFailed || s.State == conformance.StateSetupFailed {
			failed[s.ID] = true
		}
	}
	return failed
}

// compare returns what is wrong with rep for p, "" when nothing is. A spec
// the reference fails too (in known) is not held against a mutant.
func compare(p pin, rep conformance.Report, known map[string]bool) string {
	var b strings.Builder
	for _, f := range rep.SuiteFailures {
		fmt.Fprintf(&b, "suite failure: %s\n", f)
	}
	if len(rep.Specs) == 0 {
		b.WriteString("the report has no specs\n")
	}
	results := map[string]conformance.Result{}
	for _, s := range rep.Specs {
		results[s.ID] = s
	}
	failed := failures(rep)
	for _, id := range p.fails {
		switch r, ok := results[id]; {
		case !ok:
			fmt.Fprintf(&b, "- %s: pinned, but not in the profile's specs (renamed or removed?)\n", id)
		case !failed[id]:
			fmt.Fprintf(&b, "- %s: pinned, but %s\n", id, r.State)
		}
	}
	var extra, excused []string
	for id := range failed {
		switch {
		case slices.Contains(p.fails, id):
		case known[id]:
			excused = append(excused, id)
		default:
			extra = append(extra, id)
		}
	}
	slices.Sort(extra)
	for _, id := range extra {
		r := results[id]
		fmt.Fprintf(&b, "+ %s: %s, not pinned: %s\n", id, r.State, indent(firstLines(r.Failure, 4)))
	}
	if b.Len() > 0 && len(excused) > 0 {
		slices.Sort(excused)
		fmt.Fprintf(&b, "(failing on the reference too, so not counted here: %s)\n", strings.Join(excused, ", "))
	}
	return b.String()
}

// TestMutantChild is the child side of TestMutants; it does nothing when
// run on its own.
func TestMutantChild(t *testing.T) {
	name := os.Getenv(envMutant)
	if name == "" {
		t.Skip("run by TestMutants")
	}
	var subject conformance.Subject
	if name == "reference" {
		subject = reference.Subject(nil)
	} else {
		m, ok := mutant.Lookup(name)
		if !ok {
			t.Fatalf("%s=%q: no such mutant", envMutant, name)
		}
		subject = m.Subject(nil)
	}
	scale, err := strconv.Atoi(os.Getenv(envScale))
	if err != nil || scale < 1 {
		t.Fatalf("%s=%q: want a whole number, 1 or more", envScale, os.Getenv(envScale))
	}
	conformance.Test(t, conformance.Config{
		Subject:        subject,
		Profile:        conformance.Profile(os.Getenv(envProfile)),
		ReportJSON:     os.Getenv(envReport),
		ConnectTimeout: time.Duration(scale) * conformance.DefaultConnectTimeout,
		ReadTimeout:    time.Duration(scale) * conformance.DefaultReadTimeout,
	})
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
