package mutant

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
)

// TestPlainGet checks that every mutant still proxies a plain GET to a
// healthy backend: each has one defect, not a broken proxy, so that the
// specs it fails are those of its defect alone.
func TestPlainGet(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "a")
		io.WriteString(w, "hello from "+r.URL.RequestURI())
	}))
	defer backend.Close()
	host, port, err := net.SplitHostPort(backend.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	topo := conformance.Topology{
		Backends: []conformance.Endpoint{{Name: "a", URL: backend.URL, Host: host, Port: p}},
		// Four seconds, so that the quarter-timeout mutants still give a
		// healthy backend a second.
		ConnectTimeout: 4 * time.Second,
		ReadTimeout:    4 * time.Second,
	}
	names := map[string]bool{}
	for _, m := range All() {
		t.Run(m.Name, func(t *testing.T) {
			if names[m.Name] || m.Defect == "" {
				t.Fatalf("mutant %q: duplicate name or no defect described", m.Name)
			}
			names[m.Name] = true
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			inst, err := m.Subject(nil).Start(ctx, topo)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			defer func() {
				if err := inst.Stop(ctx); err != nil {
					t.Errorf("stop: %v", err)
				}
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+inst.Addr()+"/x?q=1", nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			want := "hello from /x?q=1"
			if m.Name == "query-dropped" {
				want = "hello from /x"
			}
			if res.StatusCode != http.StatusOK || res.Header.Get("X-Backend") != "a" || string(body) != want {
				t.Errorf("got %s, X-Backend %q, body %q; want 200 from backend a with %q", res.Status, res.Header.Get("X-Backend"), body, want)
			}
		})
	}
}
