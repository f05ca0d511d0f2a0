package fakebackend

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	// The backend is asked to give up a tenth of the wait (at most 250 ms)
	// before the client does; at 2 s that leaves 200 ms for the answer to
	// come back, which a loaded machine needs.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
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

// TestRemoteRoundTripsServer drives an in-process Server through its control
// API and checks that every Backend method gives what calling the Server
// directly gives.
func TestRemoteRoundTripsServer(t *testing.T) {
	s := MustStart("rt")
	defer s.Close()
	ctl := httptest.NewServer(ControlHandler(s))
	defer ctl.Close()
	r, err := Dial(ctl.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if r.Name() != s.Name() || r.URL() != s.URL() || r.Addr() != s.Addr() {
		t.Errorf("identity through Remote = %q %q %q, want %q %q %q", r.Name(), r.URL(), r.Addr(), s.Name(), s.URL(), s.Addr())
	}

	// Behaviours set through the Remote shape what the data plane answers.
	if err := r.SetDefault(ctx, Behaviour{Status: 202, Body: Text("default")}); err != nil {
		t.Fatal(err)
	}
	if err := r.Enqueue(ctx, Behaviour{Status: 201, Body: Text("caf\xe9"), Header: []Field{{"X-Obs", "\xff"}}}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i, raw := range []string{
		"POST /rt/\xff HTTP/1.1\r\nHost: x\r\nX-Obs: caf\xe9\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
		"GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	} {
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := []string{"201 caf\xe9 \xff", "202 default "}[i]
		if got := fmt.Sprintf("%d %s %s", resp.StatusCode, body, resp.Header.Get("X-Obs")); got != want {
			t.Errorf("response %d = %q, want %q", i, got, want)
		}
	}

	c.Close()

	direct, _ := s.WaitRequests(ctx, 2)
	got, err := r.WaitRequests(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inUTC(got), inUTC(direct)) {
		t.Errorf("WaitRequests:\n got %+v\nwant %+v", got, direct)
	}
	got, err = r.Requests(ctx)
	if direct, _ := s.Requests(ctx); err != nil || !reflect.DeepEqual(inUTC(got), inUTC(direct)) {
		t.Errorf("Requests: %v\n got %+v\nwant %+v", err, got, direct)
	}
	if len(got) != 2 || got[0].Target != "/rt/\xff" || got[0].Get("X-Obs") != "caf\xe9" || string(got[0].Body) != "abc" {
		t.Errorf("the records are not the requests sent: %+v", got)
	}

	// Wait for the record to show the connection closed before comparing,
	// so both sides see the same state.
	if _, err := s.rec.wait(ctx, func(_ []Request, cs []Conn, _ Stats) bool { return len(cs) == 1 && cs[0].Closed }); err != nil {
		t.Fatal(err)
	}
	gotConns, err := r.Conns(ctx)
	directConns, _ := s.Conns(ctx)
	for i := range directConns {
		directConns[i].Opened = directConns[i].Opened.UTC().Round(0)
	}
	for i := range gotConns {
		gotConns[i].Opened = gotConns[i].Opened.UTC().Round(0)
	}
	if err != nil || !reflect.DeepEqual(gotConns, directConns) {
		t.Errorf("Conns: %v\n got %+v\nwant %+v", err, gotConns, directConns)
	}
	gotStats, err := r.Stats(ctx)
	if directStats, _ := s.Stats(ctx); err != nil || gotStats != directStats {
		t.Errorf("Stats = %+v, %v; want %+v", gotStats, err, directStats)
	}

	// A value the Server refuses is refused through the Remote too, with
	// the Server's reason.
	for _, bad := range []Behaviour{{Fault: "explode"}, {Status: 42}} {
		derr := s.SetDefault(ctx, bad)
		rerr := r.SetDefault(ctx, bad)
		if derr == nil || rerr == nil || !strings.Contains(rerr.Error(), derr.Error()) {
			t.Errorf("SetDefault(%+v): direct %v, remote %v", bad, derr, rerr)
		}
		derr = s.Enqueue(ctx, bad)
		rerr = r.Enqueue(ctx, bad)
		if derr == nil || rerr == nil || !strings.Contains(rerr.Error(), derr.Error()) {
			t.Errorf("Enqueue(%+v): direct %v, remote %v", bad, derr, rerr)
		}
	}
	derr, rerr := s.SetMode(ctx, "sideways"), r.SetMode(ctx, "sideways")
	if derr == nil || rerr == nil || !strings.Contains(rerr.Error(), derr.Error()) {
		t.Errorf("SetMode(sideways): direct %v, remote %v", derr, rerr)
	}

	// Modes switch the listener.
	if err := r.SetMode(ctx, Refuse); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", s.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial after SetMode(refuse) through Remote: %v, want refused", err)
	}

	// Reset clears both views alike, mode included.
	if err := r.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = r.Requests(ctx)
	st, _ := r.Stats(ctx)
	if err != nil || len(got) != 0 || st != (Stats{}) {
		t.Errorf("after Reset through Remote: %d requests, stats %+v, %v", len(got), st, err)
	}
	resp, err := http.Get(s.URL() + "/after-reset")
	if err != nil {
		t.Fatalf("Reset through Remote left the listener refusing: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after Reset the default is %d, want Echo's 200", resp.StatusCode)
	}

	// Closing the Remote leaves the Server running.
	r.Close()
	if _, err := s.Requests(ctx); err != nil {
		t.Errorf("Server after its Remote closed: %v", err)
	}
}
