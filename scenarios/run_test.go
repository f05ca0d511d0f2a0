package scenarios

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// The built-in scenarios the stub backend can express pass against a proxy
// that does the right thing. Blackhole needs the real fake backend.
func TestBuiltinsPassAgainstACorrectProxy(t *testing.T) {
	cases := []struct {
		id       string
		profiles []string
	}{
		{"scenario/failover/refused-first", []string{"seed", "rfc9110"}},
		{"scenario/failover/all-down", []string{"seed", "rfc9110"}},
		{"scenario/failover/recovery", []string{"seed"}},
		{"scenario/failover/get-after-reset", []string{"seed"}},
		{"scenario/failover/post-not-replayed", []string{"rfc9110"}},
		{"scenario/truncated/reset-mid-body-length", []string{"seed"}},
		{"scenario/truncated/reset-mid-body-chunked", []string{"seed"}},
		{"scenario/prefix/fall-through", []string{"seed"}},
		{"scenario/hop-by-hop/response-connection-listed", []string{"rfc9110"}},
		{"scenario/hop-by-hop/request-connection-listed", []string{"rfc9110"}},
		{"scenario/timeout/read-hang", []string{"seed", "rfc9110"}},
	}
	for _, tc := range cases {
		for _, profile := range tc.profiles {
			t.Run(tc.id+"/"+profile, func(t *testing.T) {
				s := builtinByID(t, tc.id)
				r := startRig(t, s, &tinyProxy{})
				res := r.run(t, s, profile)
				if !res.Passed() {
					t.Errorf("failures:\n%s", res.Summary())
				}
				if len(res.Steps) != s.Steps() {
					t.Errorf("%d step results for %d steps", len(res.Steps), s.Steps())
				}
			})
		}
	}
}

// A violated expectation is reported as exactly that failure, with its step.
func TestRunReportsViolatedExpectations(t *testing.T) {
	s := mustParse(t, `id: scenario/test/wrong
title: Expects what does not happen
level: MUST
source: test
feature: test
profiles: [seed]
topology:
  backends:
    - name: a
      default: {status: 200, body: hello}
    - name: b
      default: {status: 200, body: hello}
steps:
  - request: {target: /x}
    expect: {status: 502}
  - request: {target: /y}
    expect:
      backend: a
      response: {body: goodbye, absent: [X-Proxyspec-Backend]}
final:
  received: {b: 2}
`)
	r := startRig(t, s, &tinyProxy{})
	res := r.run(t, s, "seed")
	want := []string{
		"step 1: expected status 502, got 200",
		"step 2: expected backend a to answer, but the request last reached b (1 delivery: b)",
		`step 2: response: expected no header X-Proxyspec-Backend, got "b"`,
		`step 2: response: expected body "goodbye", got "hello"`,
		"end: backend b received 1 request, expected 2",
	}
	if got := res.Summary(); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if res.Failures[0].Line != 14 || res.Failures[4].Line != 20 {
		t.Errorf("failure lines %d and %d, want 14 (the step) and 20 (final)", res.Failures[0].Line, res.Failures[4].Line)
	}
	// The evidence: what was sent, what came back, who received it.
	st := res.Steps[0]
	if !strings.HasPrefix(string(st.Sent), "GET /x HTTP/1.1\r\nHost: "+r.env.ProxyAddr+"\r\n") {
		t.Errorf("sent %q", st.Sent)
	}
	if st.Response == nil || st.Response.Status != 200 || string(st.Response.Body) != "hello" || !st.Response.Complete() {
		t.Errorf("response %+v", st.Response)
	}
	if len(st.Received) != 1 || st.Received[0].Backend != "a" || st.Received[0].Target != "/x" {
		t.Errorf("received %+v", st.Received)
	}
}

// A proxy with the bug a scenario targets fails it with the message that
// names the bug.
func TestRunCatchesAReplayedPost(t *testing.T) {
	s := builtinByID(t, "scenario/failover/post-not-replayed")
	r := startRig(t, s, &tinyProxy{replayAll: true})
	res := r.run(t, s, "rfc9110")
	want := []string{
		"step 1: expected the request to be delivered once, got 2 deliveries: a, b",
		"end: backends received 2 requests in all, expected 1",
	}
	if got := res.Summary(); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

func TestRunProfileExpectations(t *testing.T) {
	s := mustParse(t, `id: scenario/test/profiles
title: Profile-specific status
level: MUST
source: test
feature: test
profiles: [seed, rfc9110]
topology:
  backends:
    - name: a
      default: {status: 503}
steps:
  - request: {}
    expect:
      status: 5xx
      by_profile:
        seed: {status: 502}
`)
	r := startRig(t, s, &tinyProxy{})
	if res := r.run(t, s, "rfc9110"); !res.Passed() {
		t.Errorf("rfc9110: %s", res.Summary())
	}
	if res := r.run(t, s, ""); !res.Passed() {
		t.Errorf("no profile: %s", res.Summary())
	}
	res := r.run(t, s, "seed")
	if got, want := res.Summary(), "step 1: expected status 502, got 503 (profile seed)"; got != want {
		t.Errorf("seed: got %q, want %q", got, want)
	}
}

func TestRunAnyOf(t *testing.T) {
	s := mustParse(t, `id: scenario/test/any-of
title: Alternatives
level: MUST
source: test
feature: test
profiles: [seed]
topology:
  backends:
    - name: a
steps:
  - request: {}
    expect:
      any_of:
        - {aborted: true}
        - {status: 5xx}
`)
	r := startRig(t, s, &tinyProxy{})
	res := r.run(t, s, "seed")
	want := "step 1: none of the alternatives held: (1) expected the proxy to abort the connection without a complete response, got a complete 200 response (2) expected status 5xx, got 200"
	if res.Summary() != want {
		t.Errorf("got\n%s\nwant\n%s", res.Summary(), want)
	}
}

// Raw requests go out byte for byte, placeholders expanded; steps that
// change a backend's behaviour take effect for the next request.
func TestRunRawRequestsAndActions(t *testing.T) {
	s := mustParse(t, `id: scenario/test/raw
title: Raw bytes and actions
level: MUST
source: test
feature: test
profiles: [seed]
topology:
  backends:
    - name: a
steps:
  - request:
      raw: "GET /raw HTTP/1.1\r\nHost: ${proxy}\r\nX-Odd:   spaced   \r\nX-Backend: ${backend.a}\r\n\r\n"
    expect:
      status: 200
      upstream: {target: /raw, equal: {X-Odd: spaced, X-Backend: "${backend.a}"}}
  - enqueue: {backend: a, behaviours: [{status: 418, body: teapot}]}
  - request: {target: /q}
    expect: {status: 418, response: {body: teapot}}
  - set_default: {backend: a, behaviour: {status: 201, body: made}}
  - request: {method: PUT, target: /d, body: "x"}
    expect: {status: 201, upstream: {method: PUT, body: "x", equal: {Content-Length: "1"}}}
  - set_mode: {backend: a, mode: refuse}
  - request: {target: /gone}
    expect: {status: 502, forwarded: false}
`)
	r := startRig(t, s, &tinyProxy{})
	res := r.run(t, s, "seed")
	if !res.Passed() {
		t.Fatalf("failures:\n%s", res.Summary())
	}
	want := "GET /raw HTTP/1.1\r\nHost: " + r.env.ProxyAddr + "\r\nX-Odd:   spaced   \r\nX-Backend: " + r.env.Backends["a"].Addr() + "\r\n\r\n"
	if got := string(res.Steps[0].Sent); got != want {
		t.Errorf("sent %q, want %q", got, want)
	}
	kinds := []string{}
	for _, st := range res.Steps {
		kinds = append(kinds, st.Kind)
	}
	if got := strings.Join(kinds, ","); got != "request,enqueue,request,set_default,request,set_mode,request" {
		t.Errorf("step kinds %s", got)
	}
}

// A proxy that holds the connection without answering is a timeout, not an
// abort, and the step's timeout bounds the wait.
func TestRunTimeoutIsNotAnAbort(t *testing.T) {
	s := mustParse(t, `id: scenario/test/hang
title: Hang
level: MUST
source: test
feature: test
profiles: [seed]
topology:
  read_timeout: 1m
  backends:
    - name: a
      default: {fault: hang}
steps:
  - request: {}
    timeout: 300ms
    expect: {aborted: true}
`)
	r := startRig(t, s, &tinyProxy{})
	res := r.run(t, s, "seed")
	want := "step 1: expected the proxy to abort the connection without a complete response, got no response (nothing more within 300ms, before a complete status line and header section)"
	if res.Summary() != want {
		t.Errorf("got\n%s\nwant\n%s", res.Summary(), want)
	}
	// The proxy would hold on for its minute: anything well short of it
	// shows the step's timeout ended the wait, stalls of the machine aside.
	if e := res.Steps[0].Response.Elapsed; e > 10*time.Second {
		t.Errorf("waited %v for a 300ms timeout", e)
	}
}

func TestRunSetupErrors(t *testing.T) {
	s := builtinByID(t, "scenario/failover/refused-first")
	ctx := context.Background()
	if _, err := s.Run(ctx, Env{ProxyAddr: "127.0.0.1:1", Backends: map[string]fakebackend.Backend{"a": startStub(t, "a")}}); err == nil || !strings.Contains(err.Error(), `no backend "b"`) {
		t.Errorf("missing backend: %v", err)
	}
	r := startRig(t, s, &tinyProxy{})
	r.env.ProxyAddr = ""
	if _, err := s.Run(ctx, r.env); err == nil {
		t.Error("no proxy address: no error")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	r = startRig(t, s, &tinyProxy{})
	if _, err := s.Run(cancelled, r.env); err == nil {
		t.Error("cancelled context: no error")
	}
}
