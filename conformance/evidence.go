package conformance

import (
	"unicode/utf8"

	"github.com/proxyspec/proxyspec/fakebackend"
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

	received []fakebackend.Request // full records, for the violation check
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

func (e *Env) evidence() Evidence {
	ev := Evidence{Topology: e.topo, SubjectOutput: clip(e.Output())}
	e.mu.Lock()
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
			ev.received = append(ev.received, r)
			ev.Received = append(ev.Received, ReceivedEvidence{
				Backend: r.Backend, Conn: r.Conn, Seq: r.Seq,
				Raw:        clip(string(r.RawHead) + string(r.RawBody)),
				Violations: r.Violations,
			})
		}
	}
	return ev
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
