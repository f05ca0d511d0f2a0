package ratelimit_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/proxy"
	"github.com/proxyspec/proxyspec/proxy/ratelimit"
)

// The seed's stack: the limiter runs before the proxy, so refused requests
// never reach a backend, and requests outside the prefix reach the app.
func TestLimiterBeforeProxy(t *testing.T) {
	var backendHits, appHits atomic.Int32
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backendHits.Add(1)
	}))
	defer back.Close()
	p, err := proxy.New([]string{back.URL}, proxy.WithPathPrefix("/api"), proxy.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { appHits.Add(1) })
	front := httptest.NewServer(proxy.Chain(lim.Wrap, p.Wrap)(app))
	defer front.Close()

	var codes []int
	for _, path := range []string{"/api/a", "/home", "/api/b", "/api/c"} {
		res, err := http.Get(front.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		codes = append(codes, res.StatusCode)
	}
	want := []int{200, 200, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("statuses %v, want %v", codes, want)
		}
	}
	if backendHits.Load() != 1 || appHits.Load() != 1 {
		t.Errorf("backend got %d, app got %d; want 1 and 1", backendHits.Load(), appHits.Load())
	}
}
