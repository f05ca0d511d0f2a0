package selftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/internal/reference"
	"github.com/proxyspec/proxyspec/proxy"
)

// The selection, failover, 502 and timeout specs (area A) are run here
// against the reference under the rfc9110 profile, and against variants of
// the reference with one defect each, to show that every spec fails the
// proxy it is meant to catch and passes the ones it is not. Ginkgo runs one
// suite per process, so each case runs in a child process (TestAreaAChild)
// and is judged on its JSON report.

const areaAChildEnv = "PROXYSPEC_SELFTEST_AREA_A"

// areaA selects the area's specs by their feature labels.
const areaA = "(round-robin || balance || failover || 502 || timeouts) && !scenario"

type areaACase struct {
	name    string
	subject func() conformance.Subject
	profile conformance.Profile
	filter  string
	failed  []string // spec IDs that must fail
	passed  []string // spec IDs that must pass; nil with all: every spec that ran
	all     bool     // every spec that ran must pass
}

var areaACases = []areaACase{
	{
		name:    "reference-rfc9110",
		subject: func() conformance.Subject { return reference.Subject(nil) },
		profile: conformance.ProfileRFC9110,
		filter:  areaA,
		all:     true,
		passed:  []string{"balance/statistical", "failover/post-not-replayed", "502/all-fail", "502/invalid-response", "502/no-leak", "timeouts/connect", "timeouts/read-header", "timeouts/read-body-gap", "timeouts/read-body-gap-chunked", "timeouts/not-early"},
	},
	{
		name:    "reference-seed",
		subject: func() conformance.Subject { return reference.Subject(nil) },
		profile: conformance.ProfileSeed,
		filter:  areaA,
		all:     true,
		passed:  []string{"round-robin/sequential", "round-robin/one-down", "round-robin/concurrent", "failover/refused", "failover/connect-timeout", "failover/reset", "failover/read-timeout", "failover/all-tried", "failover/post-not-replayed", "502/no-backends", "502/all-refused", "502/all-fail", "502/invalid-response", "502/no-leak", "timeouts/connect", "timeouts/read-header", "timeouts/read-body-gap", "timeouts/read-body-gap-chunked", "timeouts/not-early", "timeouts/read-gaps"},
	},
	{
		// Random selection is fair but not round-robin: the exact specs
		// catch it (false-pass probability <= 1e-6 each), the statistical
		// one must not (false-fail probability 1e-6).
		name:    "random-start-seed",
		subject: variant("random-start", func(conformance.Topology) []proxy.Option { return []proxy.Option{proxy.WithStrategy(randomStart{})} }),
		profile: conformance.ProfileSeed,
		filter:  "round-robin && !scenario",
		failed:  []string{"round-robin/sequential", "round-robin/one-down"},
	},
	{
		name:    "random-start-rfc9110",
		subject: variant("random-start", func(conformance.Topology) []proxy.Option { return []proxy.Option{proxy.WithStrategy(randomStart{})} }),
		profile: conformance.ProfileRFC9110,
		filter:  "balance && !scenario",
		passed:  []string{"balance/statistical"},
	},
	{
		// Smooth weighted round-robin 46:37:37 over three backends gives
		// the first exactly 1/3 + 5 points: the skew the statistical spec
		// claims to catch.
		name: "skewed-rfc9110",
		subject: variant("skewed", func(conformance.Topology) []proxy.Option {
			return []proxy.Option{proxy.WithStrategy(newSmooth(46, 37, 37))}
		}),
		profile: conformance.ProfileRFC9110,
		filter:  "balance && !scenario",
		failed:  []string{"balance/statistical"},
	},
	{
		name: "skewed-seed",
		subject: variant("skewed", func(conformance.Topology) []proxy.Option {
			return []proxy.Option{proxy.WithStrategy(newSmooth(46, 37, 37))}
		}),
		profile: conformance.ProfileSeed,
		filter:  "round-robin && !scenario",
		failed:  []string{"round-robin/sequential", "round-robin/concurrent"},
	},
	{
		// Counting attempts instead of requests changes nothing while every
		// backend answers, and halves the next backend's share when one
		// refuses.
		name:    "per-attempt-counter",
		subject: perAttemptSubject,
		profile: conformance.ProfileSeed,
		filter:  "round-robin && !scenario",
		failed:  []string{"round-robin/one-down"},
		// Its counter is read before it is incremented, so concurrent
		// requests share turns: round-robin/concurrent usually catches
		// that, but not deterministically.
		passed: []string{"round-robin/sequential"},
	},
	{
		name:    "leaky-errors",
		subject: variant("leaky-errors", func(conformance.Topology) []proxy.Option { return []proxy.Option{proxy.WithRoundTripper(leakErrors)} }),
		profile: conformance.ProfileRFC9110,
		filter:  "502 && !scenario",
		failed:  []string{"502/no-leak"},
		passed:  []string{"502/all-refused", "502/all-fail"},
	},
	{
		// Retrying a failed attempt once on the same backend, whatever the
		// method, delivers a POST twice and tries backends twice.
		name:    "retry-once",
		subject: variant("retry-once", func(conformance.Topology) []proxy.Option { return []proxy.Option{proxy.WithRoundTripper(retryOnce)} }),
		profile: conformance.ProfileRFC9110,
		filter:  "failover && !scenario",
		failed:  []string{"failover/post-not-replayed"},
	},
	{
		name:    "retry-once-seed",
		subject: variant("retry-once", func(conformance.Topology) []proxy.Option { return []proxy.Option{proxy.WithRoundTripper(retryOnce)} }),
		profile: conformance.ProfileSeed,
		filter:  "failover && !scenario",
		failed:  []string{"failover/post-not-replayed", "failover/reset", "failover/all-tried"},
		passed:  []string{"failover/refused"},
	},
	{
		name: "connect-timeout-late",
		subject: variant("connect-timeout-late", func(t conformance.Topology) []proxy.Option {
			return []proxy.Option{proxy.WithConnectTimeout(4 * t.ConnectTimeout)}
		}),
		profile: conformance.ProfileSeed,
		filter:  "(timeouts || failover) && !scenario",
		failed:  []string{"timeouts/connect", "failover/connect-timeout"},
		passed:  []string{"timeouts/read-header", "failover/refused"},
	},
	{
		name: "connect-timeout-early",
		subject: variant("connect-timeout-early", func(t conformance.Topology) []proxy.Option {
			return []proxy.Option{proxy.WithConnectTimeout(t.ConnectTimeout / 4)}
		}),
		profile: conformance.ProfileRFC9110,
		filter:  "timeouts && !scenario",
		failed:  []string{"timeouts/connect"},
		passed:  []string{"timeouts/read-header", "timeouts/not-early"},
	},
	{
		name: "read-timeout-late",
		subject: variant("read-timeout-late", func(t conformance.Topology) []proxy.Option {
			return []proxy.Option{proxy.WithReadTimeout(4 * t.ReadTimeout)}
		}),
		profile: conformance.ProfileSeed,
		filter:  "(timeouts || failover) && !scenario",
		failed:  []string{"timeouts/read-header", "timeouts/read-body-gap", "timeouts/read-body-gap-chunked", "failover/read-timeout"},
		passed:  []string{"timeouts/connect", "timeouts/not-early", "timeouts/read-gaps"},
	},
	{
		name: "read-timeout-early",
		subject: variant("read-timeout-early", func(t conformance.Topology) []proxy.Option {
			return []proxy.Option{proxy.WithReadTimeout(t.ReadTimeout / 4)}
		}),
		profile: conformance.ProfileSeed,
		filter:  "timeouts && !scenario",
		failed:  []string{"timeouts/read-header", "timeouts/not-early", "timeouts/read-gaps"},
		passed:  []string{"timeouts/connect"},
	},
}

func TestAreaA(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the area's specs in child processes")
	}
	for _, c := range areaACases {
		t.Run(c.name, func(t *testing.T) {
			// Children mostly wait on timeouts; their bounds have the
			// margin's slack for a neighbour's load.
			t.Parallel()
			rep := runAreaAChild(t, c.name)
			states := map[string]conformance.State{}
			for _, s := range rep.Specs {
				states[s.ID] = s.State
			}
			if len(states) == 0 {
				t.Fatalf("no spec ran (filter %q, profile %s)", c.filter, c.profile)
			}
			for _, id := range c.failed {
				if states[id] != conformance.StateFailed {
					t.Errorf("%s is %q against %s, want failed", id, states[id], c.name)
				}
			}
			for _, id := range c.passed {
				if states[id] != conformance.StatePassed {
					t.Errorf("%s is %q against %s, want passed%s", id, states[id], c.name, failureOf(rep, id))
				}
			}
			if c.all {
				for _, s := range rep.Specs {
					if s.State != conformance.StatePassed {
						t.Errorf("%s is %q against %s, want passed: %s", s.ID, s.State, c.name, s.Failure)
					}
				}
			}
			for _, s := range rep.Specs {
				why, _, _ := strings.Cut(s.Failure, "\n")
				t.Logf("%-13s %-6s %-36s %5d ms %s", s.State, s.Level, s.ID, s.DurationMS, why)
			}
		})
	}
}

func failureOf(rep conformance.Report, id string) string {
	for _, s := range rep.Specs {
		if s.ID == id && s.Failure != "" {
			return ": " + s.Failure
		}
	}
	return ""
}

// TestAreaAChild runs one case's suite when started by TestAreaA.
func TestAreaAChild(t *testing.T) {
	name := os.Getenv(areaAChildEnv)
	if name == "" {
		t.Skip("runs only as a child process of TestAreaA")
	}
	i := slices.IndexFunc(areaACases, func(c areaACase) bool { return c.name == name })
	if i < 0 {
		t.Fatalf("unknown case %q", name)
	}
	c := areaACases[i]
	_, err := conformance.Run(conformance.Config{
		Subject:     c.subject(),
		Profile:     c.profile,
		LabelFilter: c.filter,
		ReportJSON:  os.Getenv(areaAChildEnv + "_REPORT"),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
}

func runAreaAChild(t *testing.T, name string) conformance.Report {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(exe, "-test.run=^TestAreaAChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), areaAChildEnv+"="+name, areaAChildEnv+"_REPORT="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("child %s: %v\n%s", name, err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("child %s wrote no report: %v\n%s", name, err, out)
	}
	var rep conformance.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("child %s: report: %v", name, err)
	}
	return rep
}

// variant is the reference with options added after the topology's (so
// they win over them).
func variant(name string, opts func(conformance.Topology) []proxy.Option) func() conformance.Subject {
	return func() conformance.Subject {
		return conformance.Handler(name, func(t conformance.Topology) (http.Handler, error) {
			return reference.New(t, nil, opts(t)...)
		})
	}
}

// randomStart starts each request at a uniformly random backend.
type randomStart struct{}

func (randomStart) Next(_ *http.Request, n int) int { return rand.IntN(n) }

// smooth is nginx's smooth weighted round-robin; with as many weights as
// backends it skews the spread deterministically, otherwise it is plain
// round-robin.
type smooth struct {
	mu      sync.Mutex
	weights []int
	current []int
	rr      proxy.RoundRobin
}

func newSmooth(weights ...int) *smooth {
	return &smooth{weights: weights, current: make([]int, len(weights))}
}

func (s *smooth) Next(r *http.Request, n int) int {
	if n != len(s.weights) {
		return s.rr.Next(r, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	best, total := 0, 0
	for i, w := range s.weights {
		s.current[i] += w
		total += w
		if s.current[i] > s.current[best] {
			best = i
		}
	}
	s.current[best] -= total
	return best
}

// perAttemptSubject counts upstream attempts rather than requests: the
// start of a request is the number of attempts made so far.
func perAttemptSubject() conformance.Subject {
	return conformance.Handler("per-attempt-counter", func(t conformance.Topology) (http.Handler, error) {
		c := &attemptCounter{}
		return reference.New(t, nil, proxy.WithStrategy(c), proxy.WithRoundTripper(c.wrap))
	})
}

type attemptCounter struct{ n atomic.Uint64 }

func (c *attemptCounter) Next(_ *http.Request, n int) int { return int(c.n.Load() % uint64(n)) }

func (c *attemptCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		c.n.Add(1)
		return rt.RoundTrip(r)
	})
}

// leakErrors answers a failed attempt with a 502 of its own that carries
// the error, backend address and port included, as naive proxies do.
func leakErrors(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		res, err := rt.RoundTrip(r)
		if err == nil {
			return res, nil
		}
		msg := fmt.Sprintf("upstream %s: %v", r.URL.Host, err)
		return &http.Response{
			StatusCode: http.StatusBadGateway, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": {"text/plain; charset=utf-8"}},
			Body:          io.NopCloser(strings.NewReader(msg)),
			ContentLength: int64(len(msg)),
			Request:       r,
		}, nil
	})
}

// retryOnce sends a request again, once, to the same backend when an
// attempt fails, whatever its method.
func retryOnce(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		var body []byte
		if r.Body != nil {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, err
			}
			body = b
		}
		try := func() (*http.Response, error) {
			out := r.Clone(r.Context())
			if r.Body != nil {
				out.Body = io.NopCloser(bytes.NewReader(body))
			}
			return rt.RoundTrip(out)
		}
		res, err := try()
		if err != nil {
			res, err = try()
		}
		return res, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
