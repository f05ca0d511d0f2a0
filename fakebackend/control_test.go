package fakebackend

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// stubBackend is a Backend whose state a test sets directly: it lets the
// control API be tested on its own, including answers a real backend rarely
// gives (a refused value, an internal error).
type stubBackend struct {
	mu      sync.Mutex
	reqs    []Request
	arrived chan struct{} // closed and replaced whenever a request is added
	conns   []Conn
	stats   Stats
	def     Behaviour
	queue   []Behaviour
	mode    Mode
	resets  int
	parked  chan int // when not nil, WaitRequests sends n on it before blocking
	refuse  error    // returned by SetDefault, Enqueue and SetMode when set
	broken  error    // returned by the reads when set
}

var _ Backend = (*stubBackend)(nil)

func newStub() *stubBackend { return &stubBackend{arrived: make(chan struct{}), mode: Serve} }

func (s *stubBackend) Name() string { return "stub" }
func (s *stubBackend) URL() string  { return "http://127.0.0.1:1234" }
func (s *stubBackend) Addr() string { return "127.0.0.1:1234" }

func (s *stubBackend) add(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Index = len(s.reqs)
	s.reqs = append(s.reqs, r)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func (s *stubBackend) Requests(ctx context.Context) ([]Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return nil, s.broken
	}
	return append([]Request(nil), s.reqs...), nil
}

func (s *stubBackend) WaitRequests(ctx context.Context, n int) ([]Request, error) {
	for {
		s.mu.Lock()
		snap, ch := append([]Request(nil), s.reqs...), s.arrived
		s.mu.Unlock()
		if len(snap) >= n {
			return snap, nil
		}
		if s.parked != nil {
			s.parked <- n
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return snap, ctx.Err()
		}
	}
}

func (s *stubBackend) Conns(ctx context.Context) ([]Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Conn(nil), s.conns...), s.broken
}

func (s *stubBackend) Stats(ctx context.Context) (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats, s.broken
}

func (s *stubBackend) SetDefault(ctx context.Context, b Behaviour) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		return s.refuse
	}
	s.def = b
	return nil
}

func (s *stubBackend) Enqueue(ctx context.Context, bs ...Behaviour) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		return s.refuse
	}
	s.queue = append(s.queue, bs...)
	return nil
}

func (s *stubBackend) SetMode(ctx context.Context, m Mode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil {
		return s.refuse
	}
	s.mode = m
	return nil
}

func (s *stubBackend) Reset(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs, s.conns, s.stats, s.queue = nil, nil, Stats{}, nil
	s.def, s.mode = Behaviour{}, Serve
	s.resets++
	return nil
}

func (s *stubBackend) Close() error { return nil }

// call sends one request to the control API with a plain client and returns
// the status and body.
func call(t *testing.T, base, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestControlRejectsBadBodies(t *testing.T) {
	stub := newStub()
	srv := httptest.NewServer(ControlHandler(stub))
	defer srv.Close()

	for _, tc := range []struct {
		method, path, body string
		want               string // in the error message
	}{
		{"PUT", "/default", `{"status": 503`, "unexpected EOF"},
		{"PUT", "/default", `{"stauts": 503}`, `unknown field "stauts"`},
		{"PUT", "/default", `{"status": "503"}`, "Behaviour.status"},
		{"PUT", "/default", `{"delay": "soon"}`, `duration "soon"`},
		{"PUT", "/default", `{"status": 503} {"status": 500}`, "trailing data"},
		{"PUT", "/default", `{"status": 503} x`, "trailing data"},
		{"POST", "/queue", `{"status": 503}`, "cannot unmarshal object"},
		{"POST", "/queue", `[{"fault": "hang"}, {"colse": true}]`, `unknown field "colse"`},
		{"PUT", "/mode", `"refuse"`, "cannot unmarshal string"},
		{"PUT", "/mode", `{}`, `want {"mode"`},
		{"PUT", "/mode", `{"mode": "refuse", "now": true}`, `unknown field "now"`},
	} {
		status, body := call(t, srv.URL, tc.method, tc.path, tc.body)
		var eb errorBody
		if err := json.Unmarshal([]byte(body), &eb); err != nil {
			t.Errorf("%s %s %s: answer is not an error object: %q", tc.method, tc.path, tc.body, body)
			continue
		}
		if status != http.StatusBadRequest || !strings.Contains(eb.Error, tc.want) {
			t.Errorf("%s %s %s: got %d %q, want 400 mentioning %q", tc.method, tc.path, tc.body, status, eb.Error, tc.want)
		}
	}
	// Nothing bad got through to the backend.
	if !reflect.DeepEqual(stub.def, Behaviour{}) || stub.queue != nil || stub.mode != Serve {
		t.Errorf("a rejected body changed the backend: default %+v, queue %+v, mode %q", stub.def, stub.queue, stub.mode)
	}
}

func TestControlAppliesWrites(t *testing.T) {
	stub := newStub()
	srv := httptest.NewServer(ControlHandler(stub))
	defer srv.Close()

	if status, body := call(t, srv.URL, "PUT", "/default", `{"status": 503, "delay": "250ms", "header": [{"name": "X-A", "value": "1"}]}`); status != http.StatusNoContent {
		t.Fatalf("PUT /default: %d %s", status, body)
	}
	want := Behaviour{Status: 503, Delay: D(250 * time.Millisecond), Header: []Field{{"X-A", "1"}}}
	if !reflect.DeepEqual(stub.def, want) {
		t.Errorf("default = %+v, want %+v", stub.def, want)
	}
	if status, body := call(t, srv.URL, "POST", "/queue", `[{"fault": "hang"}, {"close": true}]`); status != http.StatusNoContent {
		t.Fatalf("POST /queue: %d %s", status, body)
	}
	if wantQ := []Behaviour{{Fault: Hang}, {Close: true}}; !reflect.DeepEqual(stub.queue, wantQ) {
		t.Errorf("queue = %+v, want %+v", stub.queue, wantQ)
	}
	if status, body := call(t, srv.URL, "PUT", "/mode", `{"mode": "blackhole"}`); status != http.StatusNoContent {
		t.Fatalf("PUT /mode: %d %s", status, body)
	}
	if stub.mode != Blackhole {
		t.Errorf("mode = %q, want blackhole", stub.mode)
	}
	if status, body := call(t, srv.URL, "POST", "/reset", ""); status != http.StatusNoContent || stub.resets != 1 {
		t.Errorf("POST /reset: %d %s, %d resets", status, body, stub.resets)
	}
}

func TestControlReportsBackendErrors(t *testing.T) {
	stub := newStub()
	stub.refuse = errors.New(`unknown fault "explode"`)
	stub.broken = errors.New("recorder is gone")
	srv := httptest.NewServer(ControlHandler(stub))
	defer srv.Close()

	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"PUT", "/default", `{"fault": "explode"}`, http.StatusUnprocessableEntity, "explode"},
		{"POST", "/queue", `[{"fault": "explode"}]`, http.StatusUnprocessableEntity, "explode"},
		{"PUT", "/mode", `{"mode": "sideways"}`, http.StatusUnprocessableEntity, "explode"},
		{"GET", "/requests", "", http.StatusInternalServerError, "recorder is gone"},
		{"GET", "/conns", "", http.StatusInternalServerError, "recorder is gone"},
		{"GET", "/stats", "", http.StatusInternalServerError, "recorder is gone"},
		{"GET", "/requests?wait=x", "", http.StatusBadRequest, `wait="x"`},
		{"GET", "/requests?wait=-1", "", http.StatusBadRequest, `wait="-1"`},
		{"GET", "/requests?wait=1&timeout=1", "", http.StatusBadRequest, `timeout="1"`},
		{"GET", "/requests?timeout=1s", "", http.StatusBadRequest, "without wait"},
	} {
		status, body := call(t, srv.URL, tc.method, tc.path, tc.body)
		var eb errorBody
		if err := json.Unmarshal([]byte(body), &eb); err != nil || status != tc.status || !strings.Contains(eb.Error, tc.want) {
			t.Errorf("%s %s: got %d %s, want %d with an error mentioning %q", tc.method, tc.path, status, body, tc.status, tc.want)
		}
	}
	if status, _ := call(t, srv.URL, "DELETE", "/requests", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /requests: %d, want 405", status)
	}
	if status, _ := call(t, srv.URL, "GET", "/nope", ""); status != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", status)
	}
}

func TestControlWait(t *testing.T) {
	stub := newStub()
	srv := httptest.NewServer(ControlHandler(stub))
	defer srv.Close()
	stub.add(Request{Method: "GET", Target: "/first"})

	// A wait that cannot be met times out on the server's clock and still
	// answers with what arrived.
	status, body := call(t, srv.URL, "GET", "/requests?wait=2&timeout=50ms", "")
	var eb errorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Fatalf("504 body %q: %v", body, err)
	}
	if status != http.StatusGatewayTimeout || len(eb.Requests) != 1 || eb.Requests[0].Target != "/first" {
		t.Errorf("unmet wait: got %d %s, want 504 with the one request", status, body)
	}

	// A wait that is met answers once the missing request arrives, and not
	// before: the second request is added only after the backend parked the
	// wait, so an answer with both proves the handler waited.
	stub.parked = make(chan int, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		status, body := call(t, srv.URL, "GET", "/requests?wait=2", "")
		var reqs []Request
		if err := json.Unmarshal([]byte(body), &reqs); status != http.StatusOK || err != nil || len(reqs) != 2 {
			t.Errorf("met wait: got %d %s (%v), want 200 with two requests", status, body, err)
		}
	}()
	select {
	case n := <-stub.parked:
		if n != 2 {
			t.Errorf("backend asked to wait for %d requests, want 2", n)
		}
	case <-done:
		t.Fatal("wait=2 answered without waiting")
	}
	stub.add(Request{Method: "GET", Target: "/second"})
	<-done
}

func TestControlInfo(t *testing.T) {
	srv := httptest.NewServer(ControlHandler(newStub()))
	defer srv.Close()
	status, body := call(t, srv.URL, "GET", "/info", "")
	var info Info
	if err := json.Unmarshal([]byte(body), &info); status != http.StatusOK || err != nil {
		t.Fatalf("GET /info: %d %s %v", status, body, err)
	}
	if want := (Info{Name: "stub", URL: "http://127.0.0.1:1234", Addr: "127.0.0.1:1234"}); info != want {
		t.Errorf("info = %+v, want %+v", info, want)
	}
}
