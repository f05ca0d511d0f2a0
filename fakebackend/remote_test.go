package fakebackend

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sameJSON fails unless got and want encode alike: what crosses the control
// API is JSON, so this is the equality a Remote can promise (a time's
// monotonic reading and location do not travel, its instant does).
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("%s through Remote:\n got %s\nwant %s", what, g, w)
	}
}

// inUTC strips what JSON cannot carry from a time (monotonic reading,
// location) so that records compare with reflect.DeepEqual.
func inUTC(rs []Request) []Request {
	out := append([]Request(nil), rs...)
	for i := range out {
		out[i].At = out[i].At.UTC().Round(0)
	}
	return out
}

func dialStub(t *testing.T, stub *stubBackend, opts ...DialOption) *Remote {
	t.Helper()
	srv := httptest.NewServer(ControlHandler(stub))
	t.Cleanup(srv.Close)
	r, err := Dial(srv.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRemoteCarriesEverything(t *testing.T) {
	stub := newStub()
	at := time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.FixedZone("X", 3600))
	stub.add(Request{
		Backend: "stub", Conn: 3, Seq: 2, At: at, Remote: "127.0.0.1:5555",
		RawHead: []byte("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Bin: \xff\xfe\r\n\r\n"),
		RawBody: []byte("3;ext\r\nabc\r\n0\r\nT: 1\r\n\r\n"),
		Method:  "POST", Target: "/x", Proto: "HTTP/1.1",
		Header:     []Field{{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"X-Bin", "\xff\xfe"}},
		Body:       []byte("abc"),
		Trailers:   []Field{{"T", "1"}},
		Violations: []Violation{{Rule: "obs-fold", Detail: "folded line", Bytes: []byte("\r\n ")}},
	})
	stub.conns = []Conn{{ID: 3, Remote: "127.0.0.1:5555", Opened: at, Requests: 2, Closed: true, ClosedBy: "peer"}}
	stub.stats = Stats{Requests: 1, Connections: 1, OneShotConns: 0, Violations: 1}
	r := dialStub(t, stub)
	ctx := context.Background()

	if r.Name() != stub.Name() || r.URL() != stub.URL() || r.Addr() != stub.Addr() {
		t.Errorf("identity = %q %q %q, want %q %q %q", r.Name(), r.URL(), r.Addr(), stub.Name(), stub.URL(), stub.Addr())
	}
	direct, _ := stub.Requests(ctx)
	got, err := r.Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "Requests", got, direct)
	if !reflect.DeepEqual(inUTC(got), inUTC(direct)) {
		t.Errorf("Requests through Remote:\n got %+v\nwant %+v", got, direct)
	}
	got, err = r.WaitRequests(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inUTC(got), inUTC(direct)) {
		t.Errorf("WaitRequests through Remote:\n got %+v\nwant %+v", got, direct)
	}

	conns, err := r.Conns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "Conns", conns, stub.conns)
	st, err := r.Stats(ctx)
	if err != nil || st != stub.stats {
		t.Errorf("Stats = %+v, %v; want %+v", st, err, stub.stats)
	}

	b := Behaviour{
		Status: 502, Reason: "Bad", Header: []Field{{"Connection", "x"}, {"X-Obs", "caf\xe9"}},
		Body: Text("\x00\xffbinary"), Framing: "chunked", ChunkSize: 1, Trailers: []Field{{"T", "2"}},
		Informational: []Informational{{Status: 103, Header: []Field{{"Link", "</a>"}}}},
		Continue:      true, Delay: D(time.Second), SlowBody: &Slow{Bytes: 1, Interval: D(time.Millisecond)},
		Fault: ResetMidBody, Raw: Text("HTTP/1.1 200 \xff\r\n\r\n"), Close: true,
	}
	if err := r.SetDefault(ctx, b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stub.def, b) {
		t.Errorf("SetDefault delivered %+v, want %+v", stub.def, b)
	}
	q := []Behaviour{{Fault: Hang}, {}, {NoBody: true, Header: []Field{{"\xff", "v"}}}}
	if err := r.Enqueue(ctx, q...); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stub.queue, q) {
		t.Errorf("Enqueue delivered %+v, want %+v", stub.queue, q)
	}
	if err := r.Enqueue(ctx); err != nil || len(stub.queue) != len(q) {
		t.Errorf("empty Enqueue: %v, queue now %d long", err, len(stub.queue))
	}
	if err := r.SetMode(ctx, Refuse); err != nil || stub.mode != Refuse {
		t.Errorf("SetMode(refuse): %v, mode %q", err, stub.mode)
	}
	if err := r.Reset(ctx); err != nil || stub.resets != 1 || stub.mode != Serve || stub.reqs != nil {
		t.Errorf("Reset: %v, %d resets, mode %q, %d requests", err, stub.resets, stub.mode, len(stub.reqs))
	}
}

func TestRemoteWaitTimesOutWithWhatArrived(t *testing.T) {
	stub := newStub()
	stub.add(Request{Target: "/only"})
	r := dialStub(t, stub)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	got, err := r.WaitRequests(ctx, 2)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want one wrapping context.DeadlineExceeded", err)
	}
	// Only the backend's answer carries the requests: an empty result would
	// mean the client's own deadline fired first.
	if len(got) != 1 || got[0].Target != "/only" {
		t.Errorf("got %+v, want the one request that arrived", got)
	}
}

func TestRemoteWaitReturnsOnArrival(t *testing.T) {
	stub := newStub()
	stub.parked = make(chan int, 1)
	r := dialStub(t, stub)

	type result struct {
		reqs []Request
		err  error
	}
	done := make(chan result, 1)
	go func() {
		reqs, err := r.WaitRequests(context.Background(), 1)
		done <- result{reqs, err}
	}()
	<-stub.parked
	stub.add(Request{Target: "/late"})
	res := <-done
	if res.err != nil || len(res.reqs) != 1 || res.reqs[0].Target != "/late" {
		t.Errorf("WaitRequests = %+v, %v; want the late request", res.reqs, res.err)
	}
}

func TestRemoteErrors(t *testing.T) {
	stub := newStub()
	stub.refuse = errors.New(`unknown fault "explode"`)
	r := dialStub(t, stub)

	err := r.SetDefault(context.Background(), Behaviour{Fault: "explode"})
	var ce *ControlError
	if !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity || ce.Op != "PUT /default" || ce.Message != `unknown fault "explode"` {
		t.Fatalf("err = %#v, want a 422 ControlError with the backend's reason", err)
	}
	if !strings.Contains(err.Error(), `"stub"`) {
		t.Errorf("error %q does not name the backend", err)
	}
}

func TestDialOptionsAndFailures(t *testing.T) {
	stub := newStub()
	r := dialStub(t, stub, WithURL("http://b1:8080"))
	if r.URL() != "http://b1:8080" || r.Addr() != "b1:8080" || r.Name() != "stub" {
		t.Errorf("WithURL: got %q %q %q", r.URL(), r.Addr(), r.Name())
	}

	ctl := httptest.NewServer(ControlHandler(stub))
	defer ctl.Close()
	for _, u := range []string{"b1:8080", "https://b1:8080", "http://b1", "http://b1:8080/x"} {
		if _, err := Dial(ctl.URL, WithURL(u)); err == nil || !strings.Contains(err.Error(), u) {
			t.Errorf("WithURL(%q): err = %v, want one naming it", u, err)
		}
	}
	if _, err := Dial("127.0.0.1:9"); err == nil {
		t.Error("Dial without a scheme succeeded")
	}

	// Something that is not a control API: the error shows what answered.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nginx says no", http.StatusForbidden)
	}))
	defer other.Close()
	if _, err := Dial(other.URL); err == nil || !strings.Contains(err.Error(), "nginx says no") || !strings.Contains(err.Error(), "403") {
		t.Errorf("Dial of a foreign server: err = %v", err)
	}

	// Nothing listening: refused, promptly.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := Dial("http://" + addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Dial of a closed port: err = %v, want ECONNREFUSED", err)
	}
}

func TestRemoteCloseIsClientSide(t *testing.T) {
	stub := newStub()
	srv := httptest.NewServer(ControlHandler(stub))
	defer srv.Close()
	r, err := Dial(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Requests(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Requests after Close: %v, want net.ErrClosed", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The backend itself is untouched: it still answers a new client.
	r2, err := Dial(srv.URL)
	if err != nil {
		t.Fatalf("backend gone after a Remote closed: %v", err)
	}
	r2.Close()
}
