package conformance

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
	"github.com/proxyspec/proxyspec/scenarios"
)

// TopologyRequest is what a spec asks e.Start for.
type TopologyRequest struct {
	// Backends is how many fake backends to start; they are named "a", "b",
	// ... in order, and the proxy gets them in that order. 0 is allowed.
	Backends int
	// PathPrefix restricts proxying to a prefix ("" proxies everything).
	// A non-empty prefix makes the spec need FeaturePathPrefix.
	PathPrefix string
	// ShortConnect gives the proxy Config.ConnectTimeout as its connect
	// timeout (and makes the spec need FeatureConnectTimeout); otherwise the
	// proxy gets a relaxed one.
	ShortConnect bool
	// ShortRead does the same for the read timeout (FeatureReadTimeout).
	ShortRead bool
}

// needs returns the features a topology request implies.
func (r TopologyRequest) needs() []Feature {
	var fs []Feature
	if r.PathPrefix != "" {
		fs = append(fs, FeaturePathPrefix)
	}
	if r.Backends > 1 {
		fs = append(fs, FeatureMultiBackend)
	}
	if r.ShortConnect {
		fs = append(fs, FeatureConnectTimeout)
	}
	if r.ShortRead {
		fs = append(fs, FeatureReadTimeout)
	}
	return fs
}

// Env is one spec's world: its fake backends, its running proxy, a raw
// client, and the evidence of everything that went through them. A spec
// gets a fresh Env; nothing in it is shared with other specs.
type Env struct {
	// Backends are the spec's fake backends, in the order the proxy got them.
	Backends []fakebackend.Backend
	// Proxy is the host:port of the proxy under test.
	Proxy string

	ctx     context.Context
	cfg     *Config
	meta    Meta
	pool    backendPool
	topo    Topology
	inst    Instance
	started bool

	mu        sync.Mutex
	exchanges []*Exchange
	scenario  *scenarios.Result // the steps of a scenario spec
}

func newEnv(ctx context.Context, cfg *Config, m Meta, pool backendPool) *Env {
	return &Env{ctx: ctx, cfg: cfg, meta: m, pool: pool}
}

// Context is the spec's context: it ends when the spec times out or is
// interrupted. Pass it to Backend methods.
func (e *Env) Context() context.Context { return e.ctx }

// Profile is the profile being run; a spec may branch on it where profiles
// expect different things (e.g. exactly 502 vs any of 502, 503, 504).
func (e *Env) Profile() Profile { return e.cfg.Profile }

// Meta is the running spec's metadata.
func (e *Env) Meta() Meta { return e.meta }

// Topology is what the proxy under test was started with.
func (e *Env) Topology() Topology { return e.topo }

// ConnectTimeout is the proxy's connect timeout in this topology.
func (e *Env) ConnectTimeout() time.Duration { return e.topo.ConnectTimeout }

// ReadTimeout is the proxy's read timeout in this topology.
func (e *Env) ReadTimeout() time.Duration { return e.topo.ReadTimeout }

// Margin is the factor applied to the topology's timeouts before giving up.
func (e *Env) Margin() float64 { return e.cfg.Margin }

// Within returns d times the margin: how long to wait for something the
// proxy should do within d.
func (e *Env) Within(d time.Duration) time.Duration {
	return time.Duration(float64(d) * e.cfg.Margin)
}

// ResponseTimeout bounds the wait for one complete response: every backend
// tried once, each taking up to connect plus read timeout, times the margin.
func (e *Env) ResponseTimeout() time.Duration {
	n := max(1, len(e.Backends))
	return e.Within(time.Duration(n) * (e.topo.ConnectTimeout + e.topo.ReadTimeout))
}

// Start starts the topology: the fake backends, then the proxy under test
// configured for them. Everything is stopped when the spec ends, after the
// automatic checks (RFC 9112 violations seen by any backend fail the spec).
// A subject that lacks a feature the request implies makes the spec "not
// supported"; a subject that fails to start makes it "setup-failed".
func (e *Env) Start(req TopologyRequest) {
	ginkgo.GinkgoHelper()
	connect, read := relaxedFactor*e.cfg.ConnectTimeout, relaxedFactor*e.cfg.ReadTimeout
	if req.ShortConnect {
		connect = e.cfg.ConnectTimeout
	}
	if req.ShortRead {
		read = e.cfg.ReadTimeout
	}
	names := make([]string, req.Backends)
	for i := range names {
		names[i] = backendName(i)
	}
	e.start(names, Topology{PathPrefix: req.PathPrefix, ConnectTimeout: connect, ReadTimeout: read}, req.needs())
}

// start starts one fake backend per name, in order, then the subject for
// topo completed with their endpoints.
func (e *Env) start(names []string, topo Topology, needs []Feature) {
	ginkgo.GinkgoHelper()
	if e.started {
		ginkgo.Fail("conformance: Env.Start called twice in one spec")
	}
	e.started = true
	skipIfLacking(e.cfg.Subject, needs)
	e.topo = topo

	// Cleanups run last-registered first: verification and evidence run
	// while the proxy and backends are still up, then the proxy stops, then
	// the backends close.
	for _, name := range names {
		b, err := e.pool.start(e.ctx, name)
		if err != nil {
			setupFailed(fmt.Sprintf("fake backend %s did not start: %v", name, err), "")
		}
		ginkgo.DeferCleanup(func() { noteCleanup("closing fake backend "+name, b.Close()) })
		ep, err := endpoint(name, e.pool.url(b))
		if err != nil {
			setupFailed(err.Error(), "")
		}
		e.Backends = append(e.Backends, b)
		e.topo.Backends = append(e.topo.Backends, ep)
	}

	startCtx, cancel := context.WithTimeout(e.ctx, e.cfg.SpecTimeout/2)
	defer cancel()
	inst, err := e.cfg.Subject.Start(startCtx, e.topo)
	if err != nil {
		setupFailed(err.Error(), outputOf(err))
	}
	e.inst = inst
	e.Proxy = inst.Addr()
	ginkgo.DeferCleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace*2)
		defer cancel()
		noteCleanup("stopping the subject", inst.Stop(ctx))
	})
	ginkgo.DeferCleanup(e.verify)
}

// stopGrace is how long a subject gets between SIGTERM and SIGKILL, and a
// handler server between Shutdown and Close.
const stopGrace = 3 * time.Second

// backendName names the i-th backend "a", "b", ..., "z", "b26", ...
func backendName(i int) string {
	if i < 26 {
		return string(rune('a' + i))
	}
	return "b" + strconv.Itoa(i)
}

// endpoint describes a backend URL as a proxy must address it.
func endpoint(name, rawURL string) (Endpoint, error) {
	hostport := strings.TrimPrefix(rawURL, "http://")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return Endpoint{}, fmt.Errorf("backend %s: url %q: %w", name, rawURL, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return Endpoint{}, fmt.Errorf("backend %s: url %q: port: %w", name, rawURL, err)
	}
	return Endpoint{Name: name, URL: rawURL, Host: host, Port: p}, nil
}

// Backend returns the backend named name ("a", "b", ...).
func (e *Env) Backend(name string) fakebackend.Backend {
	ginkgo.GinkgoHelper()
	for _, b := range e.Backends {
		if b.Name() == name {
			return b
		}
	}
	ginkgo.Fail(fmt.Sprintf("conformance: no backend named %q in this topology", name))
	return nil
}

// Received returns every request the backends recorded, across backends,
// in arrival order; each carries its backend's name.
func (e *Env) Received() []fakebackend.Request {
	ginkgo.GinkgoHelper()
	var all []fakebackend.Request
	for _, b := range e.Backends {
		rs, err := b.Requests(e.ctx)
		Expect(err).NotTo(HaveOccurred(), "reading what backend %s received", b.Name())
		all = append(all, rs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].At.Before(all[j].At) })
	return all
}

// ReceivedBy returns the requests backend name recorded, in arrival order.
func (e *Env) ReceivedBy(name string) []fakebackend.Request {
	ginkgo.GinkgoHelper()
	rs, err := e.Backend(name).Requests(e.ctx)
	Expect(err).NotTo(HaveOccurred(), "reading what backend %s received", name)
	return rs
}

// SetMode switches backend name's listener (Serve, Refuse, Blackhole).
func (e *Env) SetMode(name string, m fakebackend.Mode) {
	ginkgo.GinkgoHelper()
	Expect(e.Backend(name).SetMode(e.ctx, m)).To(Succeed(), "setting backend %s to mode %s", name, m)
}

// SetDefault sets how backend name answers once its queue is empty.
func (e *Env) SetDefault(name string, b fakebackend.Behaviour) {
	ginkgo.GinkgoHelper()
	Expect(e.Backend(name).SetDefault(e.ctx, b)).To(Succeed(), "setting backend %s's default behaviour", name)
}

// Enqueue queues behaviours for backend name's next requests.
func (e *Env) Enqueue(name string, bs ...fakebackend.Behaviour) {
	ginkgo.GinkgoHelper()
	Expect(e.Backend(name).Enqueue(e.ctx, bs...)).To(Succeed(), "queueing behaviours on backend %s", name)
}

// Output is what the proxy under test printed so far.
func (e *Env) Output() string {
	if e.inst == nil {
		return ""
	}
	return e.inst.Output()
}

// verify runs after the spec body: it attaches the evidence, then fails the
// spec if any backend saw malformed HTTP (RFC 9112).
func (e *Env) verify() {
	ev, received := e.evidence()
	ginkgo.AddReportEntry(entryEvidence, ev, ginkgo.ReportEntryVisibilityFailureOrVerbose)
	var bad []string
	for _, r := range received {
		for _, v := range r.Violations {
			bad = append(bad, fmt.Sprintf("the proxy sent malformed HTTP to backend %s (request %d): rule %s: %s (bytes %q)",
				r.Backend, r.Index+1, v.Rule, v.Detail, v.Bytes))
		}
	}
	if len(bad) > 0 {
		ginkgo.Fail(strings.Join(bad, "\n"))
	}
}

// skipIfLacking makes the spec "not supported" when the subject lacks one
// of needs.
func skipIfLacking(s Subject, needs []Feature) {
	var missing []string
	for _, f := range needs {
		if slices.Contains(s.Lacks(), f) {
			missing = append(missing, string(f))
		}
	}
	if len(missing) == 0 {
		return
	}
	ginkgo.AddReportEntry(entryState, string(StateNotSupported), ginkgo.ReportEntryVisibilityNever)
	ginkgo.Skip(fmt.Sprintf("%s subject %s lacks %s", notSupportedPrefix, s.Name(), strings.Join(missing, ", ")))
}

// setupFailed fails the spec as a setup failure, with the subject's output.
func setupFailed(msg, output string) {
	ginkgo.AddReportEntry(entryState, string(StateSetupFailed), ginkgo.ReportEntryVisibilityNever)
	if output != "" {
		ginkgo.AddReportEntry(entryOutput, output, ginkgo.ReportEntryVisibilityNever)
		msg += "\nlast lines of its output:\n" + lastLines(output, 10)
	}
	ginkgo.Fail(setupFailedPrefix + " " + msg)
}

// Message prefixes that make states recognizable in any report.
const (
	notSupportedPrefix = "not supported:"
	setupFailedPrefix  = "setup failed:"
)

// Report entry names the kit attaches to specs.
const (
	entryMeta     = "proxyspec-meta"
	entryState    = "proxyspec-state"
	entryEvidence = "proxyspec-evidence"
	entryOutput   = "proxyspec-subject-output"
	entryCleanup  = "proxyspec-cleanup-error"
)

// lastLines returns the last n lines of s, indented.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// noteCleanup records a failure to tear something down. It does not fail
// the spec: the verdict is about what the proxy did while it ran, and a
// kit-side teardown error says nothing about that.
func noteCleanup(what string, err error) {
	if err != nil {
		ginkgo.AddReportEntry(entryCleanup, fmt.Sprintf("%s: %v", what, err), ginkgo.ReportEntryVisibilityFailureOrVerbose)
	}
}
