package conformance_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
)

// ownSpecs pins the framework tests to the specs written with the
// framework, so that specs added by others do not change what they check.
const ownSpecs = `^(forward/get-basic|hop-by-hop/request/connection|hop-by-hop/request/connection-list|failover/refused|502/no-backends|502/all-refused)$`

// children are the configurations a child process can run, by name (see
// TestChild); the other tests' files add their own.
var children = map[string]func() conformance.Config{
	"good": func() conformance.Config {
		return conformance.Config{Subject: conformance.Handler("httputil", roundRobin, conformance.FeatureFailover), Focus: ownSpecs}
	},
	"good-rfc9110": func() conformance.Config {
		return conformance.Config{Subject: conformance.Handler("httputil", roundRobin, conformance.FeatureFailover), Profile: conformance.ProfileRFC9110, Focus: ownSpecs}
	},
	"filtered": func() conformance.Config {
		return conformance.Config{Subject: conformance.Handler("httputil", roundRobin), LabelFilter: "hop-by-hop && MUST", Focus: ownSpecs}
	},
	"ctor-error": func() conformance.Config {
		return conformance.Config{Subject: conformance.Handler("broken-ctor", func(conformance.Topology) (http.Handler, error) {
			return nil, errors.New("boom: the configuration was rejected")
		}), Focus: ownSpecs}
	},
	"command-exits": func() conformance.Config {
		return conformance.Config{Subject: conformance.Command(conformance.CommandConfig{
			Name:        "quitter",
			CommandLine: `sh -c 'echo "bad config line 3" >&2; exit 1'`,
		}), Focus: ownSpecs}
	},
	"malformed-upstream": func() conformance.Config {
		return conformance.Config{Subject: conformance.Handler("sloppy", sloppy), Focus: "^forward/get-basic$"}
	},
	"slow-pool": func() conformance.Config {
		conformance.DelayPoolStart(slowPool)
		return conformance.Config{Subject: conformance.Handler("httputil", roundRobin), Focus: "^forward/get-basic$", SpecTimeout: slowPool / 2}
	},
	"leaks-connection-option": func() conformance.Config {
		return conformance.Config{Subject: conformance.Handler("leaky", leaky, conformance.FeatureFailover), Focus: ownSpecs}
	},
}

// states maps spec IDs to their state in r.
func states(r conformance.Report) map[string]conformance.State {
	m := map[string]conformance.State{}
	for _, s := range r.Specs {
		m[s.ID] = s.State
	}
	return m
}

func TestRunGoodSubject(t *testing.T) {
	code, out, rep := runChild(t, "good")
	if code != conformance.ExitPassed {
		t.Fatalf("exit %d, want %d\n%s", code, conformance.ExitPassed, out)
	}
	st := states(rep)
	if st["failover/refused"] != conformance.StateNotSupported {
		t.Errorf("failover/refused is %q for a subject lacking failover, want not-supported", st["failover/refused"])
	}
	for _, id := range []string{"forward/get-basic", "hop-by-hop/request/connection", "502/no-backends", "502/all-refused"} {
		if st[id] != conformance.StatePassed {
			t.Errorf("%s is %q, want passed\n%s", id, st[id], out)
		}
	}
	if rep.Subject != "httputil" || rep.Profile != conformance.ProfileSeed || rep.Start.IsZero() || rep.End.Before(rep.Start) {
		t.Errorf("run fields: subject %q profile %q start %v end %v", rep.Subject, rep.Profile, rep.Start, rep.End)
	}
	if rep.Totals.Passed != len(rep.Specs)-1 || rep.Totals.NotSupported != 1 {
		t.Errorf("totals %+v for %d specs", rep.Totals, len(rep.Specs))
	}
	for _, want := range []string{"passed        MUST   forward/get-basic (", "not-supported MUST   failover/refused", "verdict: PASS", "total"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Ran ") {
		t.Errorf("Ginkgo's own output was not silenced:\n%s", out)
	}
}

// slowPool is how long the "slow-pool" child's backend pool takes to start:
// twice its SpecTimeout.
const slowPool = 6 * time.Second

// The wait for the backend pool (a cold image build takes minutes) belongs to
// the kit, not to the first spec that needs a backend: it must not count
// against SpecTimeout (a CI run once failed 502/no-backends that way).
func TestRunPoolStartNotCharged(t *testing.T) {
	code, out, rep := runChild(t, "slow-pool")
	if code != conformance.ExitPassed {
		t.Fatalf("exit %d, want %d: the pool's start was charged to the spec\n%s", code, conformance.ExitPassed, out)
	}
	if st := states(rep); st["forward/get-basic"] != conformance.StatePassed {
		t.Errorf("forward/get-basic is %q, want passed\n%s", st["forward/get-basic"], out)
	}
}

func TestRunProfileAndFilter(t *testing.T) {
	_, out, rep := runChild(t, "good-rfc9110")
	for _, s := range rep.Specs {
		if !s.In(conformance.ProfileRFC9110) {
			t.Errorf("profile rfc9110 ran %s, which is not in it", s.ID)
		}
	}
	if st := states(rep); st["502/all-refused"] != conformance.StatePassed {
		t.Errorf("502/all-refused is %q under rfc9110\n%s", st["502/all-refused"], out)
	}

	_, out, rep = runChild(t, "filtered")
	if len(rep.Specs) == 0 {
		t.Fatalf("the filter kept no spec\n%s", out)
	}
	for _, s := range rep.Specs {
		if s.Feature != "hop-by-hop" || s.Level != conformance.MUST {
			t.Errorf("filter hop-by-hop && MUST kept %s (%s, %s)", s.ID, s.Feature, s.Level)
		}
	}
}

func TestRunSetupFailure(t *testing.T) {
	t.Run("handler", func(t *testing.T) { testSetupFailure(t, "ctor-error", "boom: the configuration was rejected", "") })
	t.Run("command", func(t *testing.T) {
		testSetupFailure(t, "command-exits", "exited before accepting connections", "bad config line 3")
	})
}

func testSetupFailure(t *testing.T, child, reason, output string) {
	code, out, rep := runChild(t, child)
	if code != conformance.ExitSetup {
		t.Errorf("exit %d, want %d\n%s", code, conformance.ExitSetup, out)
	}
	if len(rep.Specs) == 0 {
		t.Fatalf("no spec in the report\n%s", out)
	}
	for _, s := range rep.Specs {
		if s.State != conformance.StateSetupFailed {
			t.Errorf("%s is %q, want setup-failed", s.ID, s.State)
		}
		if !strings.Contains(s.Failure, reason) || !strings.Contains(s.Failure, output) {
			t.Errorf("%s: failure %q does not carry the subject's error %q and output %q", s.ID, s.Failure, reason, output)
		}
		if !strings.Contains(s.SubjectOutput, output) {
			t.Errorf("%s: subject output %q, want it to contain %q", s.ID, s.SubjectOutput, output)
		}
	}
	if !strings.Contains(out, "verdict: SETUP ERROR") {
		t.Errorf("no setup verdict in output:\n%s", out)
	}
}

func TestRunFailingSubject(t *testing.T) {
	code, out, rep := runChild(t, "leaks-connection-option")
	if code != conformance.ExitFailed {
		t.Errorf("exit %d, want %d\n%s", code, conformance.ExitFailed, out)
	}
	var got *conformance.Result
	for i, s := range rep.Specs {
		if s.ID == "hop-by-hop/request/connection" {
			got = &rep.Specs[i]
		} else if s.State == conformance.StateFailed && s.ID != "hop-by-hop/request/connection-list" {
			t.Errorf("%s failed too: %s", s.ID, s.Failure)
		}
	}
	if got == nil || got.State != conformance.StateFailed {
		t.Fatalf("hop-by-hop/request/connection did not fail: %+v\n%s", got, out)
	}
	if !strings.Contains(got.Failure, "a field named in Connection was forwarded") || got.Location == "" {
		t.Errorf("failure %q at %q", got.Failure, got.Location)
	}
	ev := got.Evidence
	if ev == nil || len(ev.Exchanges) != 1 || len(ev.Received) != 1 {
		t.Fatalf("evidence: %+v", ev)
	}
	if !strings.Contains(ev.Exchanges[0].Request, "Connection: X-Hop-Option\r\n") || !strings.HasPrefix(ev.Exchanges[0].Response, "HTTP/1.1 200") {
		t.Errorf("exchange evidence: %+v", ev.Exchanges[0])
	}
	if !strings.Contains(out, "failed        MUST   hop-by-hop/request/connection") || !strings.Contains(out, "verdict: FAIL") {
		t.Errorf("progress output:\n%s", out)
	}
}

// leaky is roundRobin except that it forwards a field the client listed in
// Connection: the kind of bug the suite exists to catch.
func leaky(t conformance.Topology) (http.Handler, error) {
	rp, err := newReverseProxy(t)
	if err != nil {
		return nil, err
	}
	rewrite := rp.Rewrite
	rp.Rewrite = func(r *httputil.ProxyRequest) {
		rewrite(r)
		if v := r.In.Header.Get("X-Hop-Option"); v != "" {
			r.Out.Header.Set("X-Hop-Option", v)
		}
	}
	return refuseConnect(rp), nil
}

func TestRunMalformedUpstream(t *testing.T) {
	code, out, rep := runChild(t, "malformed-upstream")
	if code != conformance.ExitFailed {
		t.Errorf("exit %d, want %d\n%s", code, conformance.ExitFailed, out)
	}
	st := states(rep)
	if len(st) != 1 || st["forward/get-basic"] != conformance.StateFailed {
		t.Fatalf("states %v, want forward/get-basic failed\n%s", st, out)
	}
	f := rep.Specs[0]
	if !strings.Contains(f.Failure, "the proxy sent malformed HTTP to backend a (request 1): rule duplicate-host") {
		t.Errorf("failure %q does not name the violation", f.Failure)
	}
	if f.Evidence == nil || len(f.Evidence.Received) != 1 || len(f.Evidence.Received[0].Violations) == 0 ||
		!strings.Contains(f.Evidence.Received[0].Raw, "Host: a.example\r\nHost: a.example\r\n") {
		t.Errorf("evidence does not show the raw bytes the backend got: %+v", f.Evidence)
	}
}

// sloppy forwards to the first backend by writing the request itself, with
// its Host field twice (RFC 9112 §3.2 allows one): a proxy whose answers
// look right but whose upstream bytes are malformed.
func sloppy(t conformance.Topology) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := net.Dial("tcp", strings.TrimPrefix(t.Backends[0].URL, "http://"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\nX-Proxyspec-Probe: %s\r\nConnection: close\r\n\r\n",
			r.RequestURI, r.Header.Get("X-Proxyspec-Probe"))
		resp, err := http.ReadResponse(bufio.NewReader(c), r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("X-Proxyspec-Backend", resp.Header.Get("X-Proxyspec-Backend"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}), nil
}
