package scenarios

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// check evaluates a step's expectations against what the client got and
// what the backends received during the step. Each method returns the
// expectations that failed, as messages for a human.
type check struct {
	resp     *Response
	received []fakebackend.Request
	vars     map[string]string
	profile  string
}

func (c *check) expect(e *expectDoc) []string {
	var out []string
	r := c.resp
	if e.Status != nil && (r.Status == 0 || !e.Status.match(r.Status)) {
		out = append(out, fmt.Sprintf("expected status %s, got %s", e.Status, c.status()))
	}
	if len(e.StatusIn) > 0 && !matchAny(e.StatusIn, r.Status) {
		out = append(out, fmt.Sprintf("expected status in %s, got %s", patterns(e.StatusIn), c.status()))
	}
	if e.Aborted != nil {
		switch {
		case *e.Aborted && !r.Aborted():
			out = append(out, fmt.Sprintf("expected the proxy to abort the connection without a complete response, got %s", r))
		case !*e.Aborted && !r.Complete():
			out = append(out, fmt.Sprintf("expected a complete response, got %s", r))
		}
	}
	if e.Forwarded != nil {
		switch {
		case *e.Forwarded && len(c.received) == 0:
			out = append(out, "expected the request to reach a backend, but no backend received it")
		case !*e.Forwarded && len(c.received) > 0:
			out = append(out, fmt.Sprintf("expected no backend to receive the request, but %s", c.deliveries()))
		}
	}
	if e.Backend != "" {
		if len(c.received) == 0 {
			out = append(out, fmt.Sprintf("expected backend %s to answer, but no backend received the request", e.Backend))
		} else if last := c.received[len(c.received)-1]; last.Backend != e.Backend {
			out = append(out, fmt.Sprintf("expected backend %s to answer, but the request last reached %s (%s)", e.Backend, last.Backend, c.deliveries()))
		}
	}
	if e.Deliveries != nil && len(c.received) != *e.Deliveries {
		out = append(out, fmt.Sprintf("expected the request to be delivered %s, got %s", times(*e.Deliveries), c.deliveries()))
	}
	for _, name := range sortedKeys(e.Received) {
		if got, want := c.count(name), e.Received[name]; got != want {
			out = append(out, fmt.Sprintf("backend %s received %s, expected %d", name, plural(got, "request"), want))
		}
	}
	if m := e.Response; m != nil {
		if r.Status == 0 {
			out = append(out, fmt.Sprintf("response: expected a response to check, got %s", r))
		} else {
			out = append(out, c.message("response", m, "", "", r.Header, r.Body)...)
		}
	}
	if m := e.Upstream; m != nil {
		if len(c.received) == 0 {
			out = append(out, "upstream: no backend received the request")
		}
		for _, q := range c.received {
			out = append(out, c.message("backend "+q.Backend, m, q.Method, q.Target, q.Header, q.Body)...)
		}
	}
	if len(e.AnyOf) > 0 {
		var alts []string
		for i := range e.AnyOf {
			msgs := c.expect(&e.AnyOf[i])
			if len(msgs) == 0 {
				alts = nil
				break
			}
			alts = append(alts, fmt.Sprintf("(%d) %s", i+1, strings.Join(msgs, "; ")))
		}
		if alts != nil {
			out = append(out, "none of the alternatives held: "+strings.Join(alts, " "))
		}
	}
	if sub, ok := e.ByProfile[c.profile]; ok && c.profile != "" {
		for _, msg := range c.expect(&sub) {
			out = append(out, fmt.Sprintf("%s (profile %s)", msg, c.profile))
		}
	}
	return out
}

func (c *check) status() string {
	if c.resp.Status == 0 {
		return c.resp.String()
	}
	return fmt.Sprint(c.resp.Status)
}

func (c *check) count(backend string) int {
	n := 0
	for _, q := range c.received {
		if q.Backend == backend {
			n++
		}
	}
	return n
}

// deliveries describes where the step's request went: "2 deliveries: a, b".
func (c *check) deliveries() string {
	if len(c.received) == 0 {
		return "no delivery"
	}
	names := make([]string, len(c.received))
	for i, q := range c.received {
		names[i] = q.Backend
	}
	n := "1 delivery"
	if len(names) > 1 {
		n = fmt.Sprintf("%d deliveries", len(names))
	}
	return fmt.Sprintf("%s: %s", n, strings.Join(names, ", "))
}

// message checks one message: the response (where is "response") or a
// request a backend received (where is "backend NAME").
func (c *check) message(where string, m *messageDoc, method, target string, header []fakebackend.Field, body []byte) []string {
	var out []string
	if m.Method != "" && method != m.Method {
		out = append(out, fmt.Sprintf("%s: expected method %s, got %s", where, m.Method, method))
	}
	if m.Target != "" {
		if want := expand(m.Target, c.vars); target != want {
			out = append(out, fmt.Sprintf("%s: expected target %q, got %q", where, want, target))
		}
	}
	for _, n := range m.Present {
		if len(fieldValues(header, n)) == 0 {
			out = append(out, fmt.Sprintf("%s: expected header %s, it is missing", where, n))
		}
	}
	for _, n := range m.Absent {
		if v := fieldValues(header, n); len(v) > 0 {
			out = append(out, fmt.Sprintf("%s: expected no header %s, got %s", where, n, quoteAll(v)))
		}
	}
	// Field lines with the same name are one list (RFC 9110 §5.3): compare
	// their combined value.
	for _, n := range sortedKeys(m.Equal) {
		want := expand(m.Equal[n], c.vars)
		v := fieldValues(header, n)
		if got := strings.Join(v, ", "); len(v) == 0 || got != want {
			out = append(out, fmt.Sprintf("%s: expected header %s: %q, got %s", where, n, want, describeField(v)))
		}
	}
	// Tokens are case-insensitive (RFC 9110 §5.6.2), so are these matches.
	for _, n := range sortedKeys(m.Contains) {
		want := expand(m.Contains[n], c.vars)
		v := fieldValues(header, n)
		if !containsFold(strings.Join(v, ", "), want) || len(v) == 0 {
			out = append(out, fmt.Sprintf("%s: expected header %s to contain %q, got %s", where, n, want, describeField(v)))
		}
	}
	for _, n := range sortedKeys(m.NotContains) {
		bad := expand(m.NotContains[n], c.vars)
		if v := fieldValues(header, n); containsFold(strings.Join(v, ", "), bad) {
			out = append(out, fmt.Sprintf("%s: expected header %s not to contain %q, got %s", where, n, bad, describeField(v)))
		}
	}
	if m.Body != nil {
		if want := expand(*m.Body, c.vars); string(body) != want {
			out = append(out, fmt.Sprintf("%s: expected body %s, got %s", where, clip(want), clip(string(body))))
		}
	}
	if m.BodyContains != "" {
		if want := expand(m.BodyContains, c.vars); !bytes.Contains(body, []byte(want)) {
			out = append(out, fmt.Sprintf("%s: expected body to contain %s, got %s", where, clip(want), clip(string(body))))
		}
	}
	return out
}

func describeField(v []string) string {
	if len(v) == 0 {
		return "no such header"
	}
	return quoteAll(v)
}

func quoteAll(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// clip quotes s for a message, cut to a readable length.
func clip(s string) string {
	const max = 200
	if len(s) > max {
		return fmt.Sprintf("%q... (%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

func matchAny(ps []statusPattern, code int) bool {
	for _, p := range ps {
		if code != 0 && p.match(code) {
			return true
		}
	}
	return false
}

func patterns(ps []statusPattern) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}
