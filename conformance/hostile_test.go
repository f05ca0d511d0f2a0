package conformance_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
)

// A proxy under test that hangs, floods its backends, answers garbage or
// never starts is reported as such (failed or setup-failed specs with a
// message that says what happened) within a bound derived from the
// configured timeouts, and never hangs the kit.

// hostileSpecs are the specs these runs are pinned to: one backend, two
// backends, and none reached.
const hostileSpecs = `^(forward/get-basic|hop-by-hop/request/connection|502/all-refused)$`

// Timeouts of the hostile runs: short, so that the bounds stay small.
const (
	hostileConnect = 50 * time.Millisecond
	hostileRead    = 100 * time.Millisecond
	hostileSpec    = 10 * time.Second
	hostileStart   = time.Second
)

// hostileBound is the longest a hostile run may take: each spec may use
// its whole SpecTimeout, then the subject gets the kit's stop grace (3 s)
// twice; on top, the process start and report.
func hostileBound(specs int) time.Duration {
	return time.Duration(specs)*(hostileSpec+6*time.Second) + 10*time.Second
}

func hostile(name string, s conformance.Subject) func() conformance.Config {
	return func() conformance.Config {
		return conformance.Config{Subject: s, Focus: hostileSpecs,
			ConnectTimeout: hostileConnect, ReadTimeout: hostileRead, SpecTimeout: hostileSpec}
	}
}

func init() {
	children["hostile-hang"] = hostile("hang", conformance.Handler("hang", func(conformance.Topology) (http.Handler, error) {
		// Accepts every request and never answers, until the kit stops it.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }), nil
	}))
	children["hostile-garbage"] = hostile("garbage", conformance.Handler("garbage", func(conformance.Topology) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			bw.WriteString("\x00\x01 this is not HTTP\r\n\r\n")
			bw.Flush()
		}), nil
	}))
	children["hostile-flood"] = hostile("flood", conformance.Handler("flood", func(t conformance.Topology) (http.Handler, error) {
		// A correct proxy, except that it sends each request floodFactor
		// times before relaying the last answer.
		rp, err := newReverseProxy(t)
		if err != nil {
			return nil, err
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for range floodFactor - 1 {
				rec := httptest.NewRecorder()
				rp.ServeHTTP(rec, r.Clone(r.Context()))
			}
			rp.ServeHTTP(w, r)
		}), nil
	}))
	children["hostile-never-starts"] = hostile("never-starts", conformance.Command(conformance.CommandConfig{
		Name:         "never-starts",
		CommandLine:  "sleep 600",
		StartTimeout: hostileStart,
		StopGrace:    time.Second,
	}))
}

const floodFactor = 20

// runHostile runs a hostile child and fails the test if it outlives bound.
func runHostile(t *testing.T, name string, specs int) (int, string, conformance.Report) {
	t.Helper()
	bound := hostileBound(specs)
	c := startChild(t, name)
	code, rep := c.wait(t, bound)
	t.Logf("%s: %v (bound %v)", name, time.Since(c.began).Round(time.Millisecond), bound)
	if len(rep.Specs) != specs {
		t.Fatalf("%s: %d specs in the report, want %d\n%s", name, len(rep.Specs), specs, c.out.String())
	}
	return code, c.out.String(), rep
}

// expectStates checks every spec ended in state, with a failure message
// holding one of the phrases.
func expectStates(t *testing.T, rep conformance.Report, state conformance.State, phrases ...string) {
	t.Helper()
	for _, s := range rep.Specs {
		if s.State != state {
			t.Errorf("%s is %q, want %q (%s)", s.ID, s.State, state, s.Failure)
			continue
		}
		t.Logf("%s: %s", s.ID, firstLine(s.Failure))
		if !containsAny(s.Failure, phrases) {
			t.Errorf("%s: failure %q says none of %q", s.ID, s.Failure, phrases)
		}
	}
}

func containsAny(s string, phrases []string) bool {
	for _, p := range phrases {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func TestHostileSubjectHangs(t *testing.T) {
	code, out, rep := runHostile(t, "hostile-hang", 3)
	if code != conformance.ExitFailed {
		t.Errorf("exit %d, want %d\n%s", code, conformance.ExitFailed, out)
	}
	expectStates(t, rep, conformance.StateFailed, "timeout", "timed out", "no response", "deadline")
}

func TestHostileSubjectAnswersGarbage(t *testing.T) {
	code, out, rep := runHostile(t, "hostile-garbage", 3)
	if code != conformance.ExitFailed {
		t.Errorf("exit %d, want %d\n%s", code, conformance.ExitFailed, out)
	}
	expectStates(t, rep, conformance.StateFailed, "malformed", "HTTP", "response")
}

func TestHostileSubjectFloodsBackends(t *testing.T) {
	code, out, rep := runHostile(t, "hostile-flood", 3)
	if code != conformance.ExitFailed {
		t.Errorf("exit %d, want %d\n%s", code, conformance.ExitFailed, out)
	}
	// The flood shows where a spec counts what reached the backends; the
	// run must report it, whichever specs notice.
	failed := 0
	for _, s := range rep.Specs {
		if s.State == conformance.StateFailed {
			failed++
			t.Logf("%s: %s", s.ID, firstLine(s.Failure))
		}
	}
	if failed == 0 {
		t.Errorf("no spec noticed %d backend requests per client request\n%s", floodFactor, out)
	}
	if st := states(rep); st["forward/get-basic"] != conformance.StateFailed {
		t.Errorf("forward/get-basic, which counts what the backend received, is %q for a flood", st["forward/get-basic"])
	}
}

func TestHostileSubjectNeverStarts(t *testing.T) {
	code, out, rep := runHostile(t, "hostile-never-starts", 3)
	if code != conformance.ExitSetup {
		t.Errorf("exit %d, want %d\n%s", code, conformance.ExitSetup, out)
	}
	expectStates(t, rep, conformance.StateSetupFailed, fmt.Sprintf("did not accept connections on"))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
