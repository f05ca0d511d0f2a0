package conformance

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/proxyspec/proxyspec/fakebackend"
	"github.com/proxyspec/proxyspec/scenarios"
)

// Evidence is what a spec's failure is judged on: what was sent, what each
// backend received, what came back, and what the proxy printed. It is
// attached to every spec and kept in the JSON report for those that did not
// pass.
type Evidence struct {
	Topology      Topology           `json:"topology"`
	Exchanges     []ExchangeEvidence `json:"exchanges,omitempty"`
	Received      []ReceivedEvidence `json:"received,omitempty"`
	SubjectOutput string             `json:"subject_output,omitempty"`
	// Scenario is the step-by-step evidence of a scenario spec.
	Scenario *scenarios.Result `json:"scenario,omitempty"`
}

// ExchangeEvidence is one client exchange, as text.
type ExchangeEvidence struct {
	Request  string `json:"request"`
	Response string `json:"response"` // raw bytes read, 1xx included
	Error    string `json:"error,omitempty"`
	TookMS   int64  `json:"took_ms"`
}

// ReceivedEvidence is one request as a backend received it.
type ReceivedEvidence struct {
	Backend    string                  `json:"backend"`
	Conn       uint64                  `json:"conn"`
	Seq        int                     `json:"seq"`
	Raw        string                  `json:"raw"` // head and body as framed on the wire
	Violations []fakebackend.Violation `json:"violations,omitempty"`
}

// evidenceLimit caps each raw message kept, so that a spec streaming a large
// body does not make a report of the same size.
const evidenceLimit = 16 << 10

// evidence gathers the spec's evidence, and every record the backends hold
// for the violation check.
func (e *Env) evidence() (Evidence, []fakebackend.Request) {
	var received []fakebackend.Request
	ev := Evidence{Topology: e.topo, SubjectOutput: clip(e.Output())}
	e.mu.Lock()
	ev.Scenario = e.scenario
	for _, x := range e.exchanges {
		xe := ExchangeEvidence{Request: clip(string(x.Request)), Response: clip(string(x.Raw)), TookMS: x.Took.Milliseconds()}
		if x.Err != nil {
			xe.Error = x.Err.Error()
		}
		ev.Exchanges = append(ev.Exchanges, xe)
	}
	e.mu.Unlock()
	for _, b := range e.Backends {
		rs, err := b.Requests(e.ctx)
		if err != nil {
			ev.Received = append(ev.Received, ReceivedEvidence{Backend: b.Name(), Raw: "(could not read records: " + err.Error() + ")"})
			continue
		}
		for _, r := range rs {
			received = append(received, r)
			ev.Received = append(ev.Received, ReceivedEvidence{
				Backend: r.Backend, Conn: r.Conn, Seq: r.Seq,
				Raw:        clip(string(r.RawHead) + string(r.RawBody)),
				Violations: r.Violations,
			})
		}
	}
	return ev, received
}

// clip keeps the first evidenceLimit bytes of s, cut on a rune boundary.
func clip(s string) string {
	if len(s) <= evidenceLimit {
		return s
	}
	cut := evidenceLimit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "\n…(clipped)"
}

// String renders the evidence for a human reading a failure in Ginkgo's
// output: the raw messages, as they went over the wire.
func (ev Evidence) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "topology: %d backend(s)", len(ev.Topology.Backends))
	for _, be := range ev.Topology.Backends {
		fmt.Fprintf(&b, " %s=%s", be.Name, be.URL)
	}
	fmt.Fprintf(&b, ", prefix %q, connect %v, read %v\n", ev.Topology.PathPrefix, ev.Topology.ConnectTimeout, ev.Topology.ReadTimeout)
	for i, x := range ev.Exchanges {
		fmt.Fprintf(&b, "--- client request %d:\n%s\n--- response (%d ms):\n%s\n", i+1, x.Request, x.TookMS, x.Response)
		if x.Error != "" {
			fmt.Fprintf(&b, "--- error: %s\n", x.Error)
		}
	}
	for _, r := range ev.Received {
		fmt.Fprintf(&b, "--- backend %s received (conn %d, request %d):\n%s\n", r.Backend, r.Conn, r.Seq, r.Raw)
		for _, v := range r.Violations {
			fmt.Fprintf(&b, "    violation %s: %s\n", v.Rule, v.Detail)
		}
	}
	if ev.Scenario != nil {
		for _, st := range ev.Scenario.Steps {
			fmt.Fprintf(&b, "--- scenario step %d (%s, line %d)\n", st.Step, st.Kind, st.Line)
			if len(st.Sent) > 0 {
				fmt.Fprintf(&b, "sent:\n%s\n", clip(string(st.Sent)))
			}
			if st.Response != nil {
				fmt.Fprintf(&b, "got (%s):\n%s\n", st.Response.Ended, clip(string(st.Response.Raw)))
			}
			for _, r := range st.Received {
				fmt.Fprintf(&b, "backend %s received:\n%s\n", r.Backend, clip(string(r.RawHead)+string(r.RawBody)))
			}
		}
	}
	if ev.SubjectOutput != "" {
		fmt.Fprintf(&b, "--- subject output:\n%s\n", ev.SubjectOutput)
	}
	return b.String()
}
