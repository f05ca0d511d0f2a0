package peer

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/fakebackend"
)

// The timeouts bound every request of every test here, so a healthy
// backend must answer within them even on a stalled machine; only the
// read-timeout case waits one out.
const (
	connectTimeout = time.Second
	readTimeout    = time.Second
	// margin bounds every wait of a test as a multiple of the timeouts.
	margin = 10
)

// backend is an httptest server that names itself in X-Backend and keeps
// the requests it got.
type backend struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	got  []*http.Request
	body []string
}

func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, r)
		b.body = append(b.body, string(body))
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Backend", name)
		io.WriteString(w, "hello from "+name)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) requests() ([]*http.Request, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*http.Request(nil), b.got...), append([]string(nil), b.body...)
}

// refusing is the URL of a loopback port that refuses connections. The fake
// backend keeps the port bound while refusing, so no other listener on the
// machine can take it during the test.
func refusing(t *testing.T) string {
	t.Helper()
	b, err := fakebackend.Start("refusing")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.SetMode(context.Background(), fakebackend.Refuse); err != nil {
		t.Fatal(err)
	}
	return b.URL()
}

// resetting answers nothing: it reads the request and closes the connection.
func resetting(w http.ResponseWriter, _ *http.Request) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		c.Close()
	}
}

// serve starts build's proxy for the backend URLs and returns its URL.
func serve(t *testing.T, build func(conformance.Topology) (http.Handler, error), prefix string, urls ...string) string {
	t.Helper()
	topo := conformance.Topology{PathPrefix: prefix, ConnectTimeout: connectTimeout, ReadTimeout: readTimeout}
	for i, u := range urls {
		topo.Backends = append(topo.Backends, conformance.Endpoint{Name: string(rune('a' + i)), URL: u})
	}
	h, err := build(topo)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

type answer struct {
	status  int
	backend string
	ctype   string
	body    string
}

func do(t *testing.T, method, url, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), margin*(connectTimeout+readTimeout))
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header.Get("X-Backend"), resp.Header.Get("Content-Type"), string(b)}
}

func TestRoundRobinAndHeaders(t *testing.T) {
	for _, build := range []struct {
		name string
		fn   func(conformance.Topology) (http.Handler, error)
	}{{"httputil", HTTPUtil}, {"failover", Failover}} {
		t.Run(build.name, func(t *testing.T) {
			bs := []*backend{newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)}
			proxy := serve(t, build.fn, "", bs[0].URL, bs[1].URL, bs[2].URL)
			var order []string
			for range 6 {
				a := do(t, "GET", proxy+"/x?q=1", "")
				order = append(order, a.backend)
			}
			if got := strings.Join(order, ""); got != "abcabc" {
				t.Errorf("backends in order = %q, want abcabc", got)
			}
			got, _ := bs[1].requests()
			r := got[0]
			if r.Host != strings.TrimPrefix(bs[1].URL, "http://") {
				t.Errorf("Host = %q, want the backend's %s", r.Host, bs[1].URL)
			}
			if v := r.Header.Values("Via"); len(v) != 1 || v[0] != "1.1 rws" {
				t.Errorf("Via = %q, want [\"1.1 rws\"]", v)
			}
			if v := r.Header.Get("X-Forwarded-For"); v != "127.0.0.1" {
				t.Errorf("X-Forwarded-For = %q, want 127.0.0.1", v)
			}
			if !r.Close {
				t.Error("the backend was not asked to close the connection")
			}
			if r.RequestURI != "/x?q=1" {
				t.Errorf("target = %q, want /x?q=1", r.RequestURI)
			}
		})
	}
}

// TestViaNamesTheReceivedProtocol sends an HTTP/1.0 request: the Via the
// backend gets names 1.0, though the request goes on as HTTP/1.1.
func TestViaNamesTheReceivedProtocol(t *testing.T) {
	b := newBackend(t, "a", nil)
	proxy := serve(t, HTTPUtil, "", b.URL)
	c, err := net.Dial("tcp", strings.TrimPrefix(proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(margin * readTimeout))
	if _, err := io.WriteString(c, "GET /old HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	got, _ := b.requests()
	if len(got) != 1 || got[0].Header.Get("Via") != "1.0 rws" || got[0].Proto != "HTTP/1.1" {
		t.Fatalf("backend got %d requests; want one HTTP/1.1 request with Via: 1.0 rws", len(got))
	}
}

func TestBadGateway(t *testing.T) {
	for _, build := range []struct {
		name string
		fn   func(conformance.Topology) (http.Handler, error)
	}{{"httputil", HTTPUtil}, {"failover", Failover}} {
		t.Run(build.name, func(t *testing.T) {
			for _, urls := range [][]string{nil, {refusing(t)}, {refusing(t), refusing(t)}} {
				a := do(t, "GET", serve(t, build.fn, "", urls...)+"/", "")
				if a.status != http.StatusBadGateway || a.ctype != "text/plain; charset=utf-8" || a.body != "502 Bad Gateway" {
					t.Errorf("%d backends, all refusing: got %d %q %q, want the seed's 502", len(urls), a.status, a.ctype, a.body)
				}
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	b := newBackend(t, "a", nil)
	proxy := serve(t, HTTPUtil, "/api", b.URL)
	for path, want := range map[string]int{"/api": 200, "/api/x": 200, "/api?q=1": 200, "/apix": 404, "/": 404, "/other/api": 404} {
		if a := do(t, "GET", proxy+path, ""); a.status != want {
			t.Errorf("GET %s: status %d, want %d", path, a.status, want)
		}
	}
	if got, _ := b.requests(); len(got) != 3 {
		t.Errorf("backend got %d requests, want the 3 under /api", len(got))
	}
}

func TestNoFailoverInHTTPUtil(t *testing.T) {
	b := newBackend(t, "b", nil)
	proxy := serve(t, HTTPUtil, "", refusing(t), b.URL)
	if a := do(t, "GET", proxy+"/", ""); a.status != http.StatusBadGateway {
		t.Errorf("first request, to the refusing backend: status %d, want 502 (no failover)", a.status)
	}
	if a := do(t, "GET", proxy+"/", ""); a.backend != "b" {
		t.Errorf("second request: answered by %q, want b", a.backend)
	}
}

func TestFailover(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		b := newBackend(t, "b", nil)
		proxy := serve(t, Failover, "", refusing(t), b.URL)
		for i := range 4 {
			if a := do(t, "GET", proxy+"/", ""); a.status != 200 || a.backend != "b" {
				t.Errorf("request %d: %d from %q, want 200 from b", i, a.status, a.backend)
			}
		}
	})
	t.Run("post-after-refused-is-whole", func(t *testing.T) {
		b := newBackend(t, "b", nil)
		proxy := serve(t, Failover, "", refusing(t), b.URL)
		if a := do(t, "POST", proxy+"/", "the whole body"); a.backend != "b" {
			t.Fatalf("POST: answered by %q (status %d), want b", a.backend, a.status)
		}
		if _, bodies := b.requests(); len(bodies) != 1 || bodies[0] != "the whole body" {
			t.Errorf("b got bodies %q, want the client's once", bodies)
		}
	})
	t.Run("get-after-reset", func(t *testing.T) {
		a, b := newBackend(t, "a", resetting), newBackend(t, "b", nil)
		proxy := serve(t, Failover, "", a.URL, b.URL)
		if got := do(t, "GET", proxy+"/", ""); got.backend != "b" {
			t.Errorf("GET: answered by %q (status %d), want b after a's reset", got.backend, got.status)
		}
	})
	t.Run("post-not-replayed", func(t *testing.T) {
		a, b := newBackend(t, "a", resetting), newBackend(t, "b", nil)
		proxy := serve(t, Failover, "", a.URL, b.URL)
		if got := do(t, "POST", proxy+"/", "once"); got.status != http.StatusBadGateway {
			t.Errorf("POST: status %d, want 502", got.status)
		}
		if got, _ := b.requests(); len(got) != 0 {
			t.Errorf("b got %d requests: the POST a received was replayed", len(got))
		}
	})
	t.Run("read-timeout", func(t *testing.T) {
		release := make(chan struct{})
		a := newBackend(t, "a", func(http.ResponseWriter, *http.Request) { <-release })
		defer close(release) // before a's Close, which waits for its handler
		b := newBackend(t, "b", nil)
		proxy := serve(t, Failover, "", a.URL, b.URL)
		start := time.Now()
		got := do(t, "GET", proxy+"/", "")
		if got.backend != "b" {
			t.Errorf("GET: answered by %q (status %d), want b after a's timeout", got.backend, got.status)
		}
		if d := time.Since(start); d < readTimeout {
			t.Errorf("answered after %v, before the read timeout %v", d, readTimeout)
		}
	})
	t.Run("all-tried-once", func(t *testing.T) {
		bs := []*backend{newBackend(t, "a", resetting), newBackend(t, "b", resetting), newBackend(t, "c", resetting)}
		proxy := serve(t, Failover, "", bs[0].URL, bs[1].URL, bs[2].URL)
		if got := do(t, "GET", proxy+"/", ""); got.status != http.StatusBadGateway {
			t.Errorf("GET: status %d, want 502", got.status)
		}
		for _, b := range bs {
			if got, _ := b.requests(); len(got) != 1 {
				t.Errorf("%s got %d attempts, want 1", b.name, len(got))
			}
		}
	})
}

func TestSubject(t *testing.T) {
	if got := Names(); got[0] != "reference" || len(got) != 3 {
		t.Errorf("Names() = %q, want reference first of 3", got)
	}
	s, err := Subject("httputil", "", conformance.FeatureVia, conformance.FeatureFailover)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "httputil" || len(s.Lacks()) != 2 {
		t.Errorf("httputil: name %q lacks %v, want httputil lacking failover and via once each", s.Name(), s.Lacks())
	}
	if s, _ := Subject("httputil-failover", "mine"); s.Name() != "mine" || len(s.Lacks()) != 0 {
		t.Errorf("httputil-failover as mine: name %q lacks %v", s.Name(), s.Lacks())
	}
	if _, err := Subject("nginx", ""); err == nil || !strings.Contains(err.Error(), `"nginx"`) {
		t.Errorf("unknown builtin: err = %v, want one naming it", err)
	}
}
