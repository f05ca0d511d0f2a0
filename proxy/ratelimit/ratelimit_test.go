package ratelimit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// clock is a manual clock for the limiter under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(t *testing.T, n int, per time.Duration, opts ...Option) (*Limiter, *clock, http.Handler) {
	t.Helper()
	l, err := New(n, per, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	l.now = c.now
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	return l, c, h
}

// hit sends one request from addr and returns the status and Retry-After.
func hit(h http.Handler, addr string) (int, string) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = addr
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Header().Get("Retry-After")
}

func TestSeedLimit(t *testing.T) {
	_, _, h := newLimiter(t, 100, time.Minute)
	for i := range 100 {
		if code, _ := hit(h, "192.0.2.1:1000"); code != http.StatusOK {
			t.Fatalf("request %d: %d, want 200", i+1, code)
		}
	}
	// One token every 0.6 s: the next one is under a second away.
	if code, ra := hit(h, "192.0.2.1:1001"); code != http.StatusTooManyRequests || ra != "1" {
		t.Fatalf("request 101: %d Retry-After %q, want 429 and 1", code, ra)
	}
	if code, _ := hit(h, "192.0.2.2:1000"); code != http.StatusOK {
		t.Fatalf("another client: %d, want 200", code)
	}
}

func TestRetryAfterComesFromTheBucket(t *testing.T) {
	_, c, h := newLimiter(t, 3, 30*time.Second) // a token every 10 s
	for range 3 {
		hit(h, "192.0.2.1:1")
	}
	if code, ra := hit(h, "192.0.2.1:1"); code != http.StatusTooManyRequests || ra != "10" {
		t.Fatalf("%d Retry-After %q, want 429 and 10", code, ra)
	}
	c.advance(4*time.Second + 500*time.Millisecond)
	if _, ra := hit(h, "192.0.2.1:1"); ra != "6" {
		t.Fatalf("4.5 s later Retry-After %q, want 6 (5.5 s rounded up)", ra)
	}
	c.advance(5500 * time.Millisecond)
	if code, _ := hit(h, "192.0.2.1:1"); code != http.StatusOK {
		t.Fatalf("after Retry-After: %d, want 200 (refused requests must not cost tokens)", code)
	}
	if code, _ := hit(h, "192.0.2.1:1"); code != http.StatusTooManyRequests {
		t.Fatalf("second request after refill: %d, want 429", code)
	}
}

func TestIdleClientsForgotten(t *testing.T) {
	l, c, h := newLimiter(t, 2, time.Minute)
	for i := range 500 {
		hit(h, "10.0."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250)+":1")
	}
	if n := len(l.clients); n != 500 {
		t.Fatalf("%d clients tracked, want 500", n)
	}
	c.advance(time.Minute)
	hit(h, "192.0.2.1:1")
	if n := len(l.clients); n != 1 {
		t.Fatalf("a period later %d clients tracked, want 1", n)
	}
}

func TestClientCap(t *testing.T) {
	l, c, h := newLimiter(t, 1, 10*time.Second, WithMaxClients(2))
	hit(h, "192.0.2.1:1")
	c.advance(3 * time.Second)
	hit(h, "192.0.2.2:1")
	if code, ra := hit(h, "192.0.2.3:1"); code != http.StatusTooManyRequests || ra != "7" {
		t.Fatalf("third client at the cap: %d Retry-After %q, want 429 and 7", code, ra)
	}
	c.advance(7 * time.Second)
	if code, _ := hit(h, "192.0.2.3:1"); code != http.StatusOK {
		t.Fatalf("third client once the first bucket refilled: %d, want 200", code)
	}
	if n := len(l.clients); n != 2 {
		t.Fatalf("%d clients tracked, cap is 2", n)
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000":              "192.0.2.1",
		"[::ffff:192.0.2.1]:5000":     "192.0.2.1",
		"[2001:db8:1:2:aaaa::1]:5000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb::9]:80":   "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":           "fe80::/64",
		"@":                           "@",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(0, time.Minute); err == nil {
		t.Error("accepted 0 requests")
	}
	if _, err := New(1, 0); err == nil {
		t.Error("accepted a zero period")
	}
	if _, err := New(1, time.Second, WithMaxClients(0)); err == nil {
		t.Error("accepted max clients 0")
	}
}
