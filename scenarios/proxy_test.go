package scenarios

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// tinyProxy is the test's proxy under test: httputil.ReverseProxy (which
// strips hop-by-hop fields) over a round-robin transport that fails over to
// the next backend for idempotent requests, 502 text/plain when all fail,
// and an optional path prefix that falls through to a local 404.
type tinyProxy struct {
	backends []string // host:port
	prefix   string
	// replayAll makes the proxy retry every method, the bug that
	// post-not-replayed exists to catch.
	replayAll bool
	// oneShot turns keep-alive off towards the backends.
	oneShot   bool
	next      atomic.Uint64
	transport http.RoundTripper
}

func startProxy(t *testing.T, p *tinyProxy, topo Topology) string {
	t.Helper()
	p.prefix = topo.PathPrefix
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: topo.ConnectTimeout}).DialContext,
		ResponseHeaderTimeout: topo.ReadTimeout,
		DisableKeepAlives:     p.oneShot,
		// Never pooled either: the stub backend closes after each answer
		// without saying so, and a PUT sent on such a connection before
		// the close is seen would fail, not be resent.
		MaxIdleConnsPerHost: -1,
		// Keep-alive on: with it off, the backend answers Connection:
		// close, and net/http's transport then drops the whole Connection
		// header, options included, so ReverseProxy cannot remove the
		// fields it lists (the bug response-connection-listed catches).
	}
	p.transport = tr
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetXForwarded() },
		Transport: p,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.prefix != "" && !strings.HasPrefix(r.URL.Path, p.prefix) {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func (p *tinyProxy) RoundTrip(r *http.Request) (*http.Response, error) {
	start := p.next.Add(1) - 1
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
	}
	var err error
	for i := range p.backends {
		out := r.Clone(r.Context())
		if r.Body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
		}
		out.URL.Scheme, out.URL.Host = "http", p.backends[(int(start)+i)%len(p.backends)]
		var resp *http.Response
		resp, err = p.transport.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		// RFC 9110 §9.2.2: a proxy must not retry non-idempotent requests.
		if !p.replayAll && r.Method != http.MethodGet && r.Method != http.MethodHead {
			return nil, err
		}
	}
	if err == nil {
		err = errors.New("no backends")
	}
	return nil, err
}

// rig is a scenario's topology started: stub backends and a tiny proxy.
type rig struct {
	env Env
}

func startRig(t *testing.T, s Scenario, p *tinyProxy) *rig {
	t.Helper()
	return startRigWith(t, s, p, func(t *testing.T, name string) fakebackend.Backend { return startStub(t, name) })
}

// startRealRig uses the real in-process fake backends.
func startRealRig(t *testing.T, s Scenario, p *tinyProxy) *rig {
	t.Helper()
	return startRigWith(t, s, p, func(t *testing.T, name string) fakebackend.Backend {
		b, err := fakebackend.Start(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	})
}

func startRigWith(t *testing.T, s Scenario, p *tinyProxy, start func(*testing.T, string) fakebackend.Backend) *rig {
	t.Helper()
	topo := s.Topology()
	r := &rig{}
	r.env.Backends = map[string]fakebackend.Backend{}
	for _, b := range topo.Backends {
		be := start(t, b.Name)
		r.env.Backends[b.Name] = be
		p.backends = append(p.backends, be.Addr())
	}
	r.env.ProxyAddr = startProxy(t, p, topo)
	return r
}

func (r *rig) run(t *testing.T, s Scenario, profile string) Result {
	t.Helper()
	r.env.Profile = profile
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.Run(ctx, r.env)
	if err != nil {
		t.Fatalf("run %s: %v", s.ID, err)
	}
	return res
}

func mustParse(t *testing.T, src string) Scenario {
	t.Helper()
	ss, ps := Parse(t.Name()+".yaml", []byte(src))
	if len(ps) > 0 {
		t.Fatalf("bad test scenario:\n%v", ps)
	}
	return ss[0]
}

func builtinByID(t *testing.T, id string) Scenario {
	t.Helper()
	ss, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no built-in scenario %s", id)
	return Scenario{}
}
