package scenarios

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// Env is what Run needs from its caller: the backends of the scenario's
// topology, started (fresh, or Reset) but otherwise untouched, and a proxy
// under test forwarding to them as the topology says.
type Env struct {
	// Backends maps each topology backend name to its backend. Run applies
	// the topology's modes, default behaviours and queues itself before the
	// first step, so a caller only starts them.
	Backends map[string]fakebackend.Backend
	// ProxyAddr is the proxy's host:port.
	ProxyAddr string
	// Profile selects the by_profile expectations that apply ("seed",
	// "rfc9110"); with "" only the common expectations apply.
	Profile string
	// Dial connects to the proxy; nil means a plain net.Dialer.
	Dial DialFunc
	// Margin multiplies the topology's timeouts to give how long the client
	// waits for a response; 0 means 2.
	Margin float64
}

// Result is what one run of a scenario observed, and what went wrong.
type Result struct {
	ID       string       `json:"id"`
	Profile  string       `json:"profile,omitempty"`
	Steps    []StepResult `json:"steps"`
	Failures []Failure    `json:"failures,omitempty"`
}

// Passed reports whether every expectation held.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// Summary is every failure, one a line, for a test failure message.
func (r Result) Summary() string {
	lines := make([]string, len(r.Failures))
	for i, f := range r.Failures {
		lines[i] = f.String()
	}
	return strings.Join(lines, "\n")
}

// StepResult is the evidence of one step.
type StepResult struct {
	Step int    `json:"step"` // 1-based, in file order
	Line int    `json:"line"`
	Name string `json:"name,omitempty"`
	Kind string `json:"kind"` // request, set_mode, enqueue, set_default
	// Sent is the request written to the proxy, byte for byte.
	Sent     []byte    `json:"sent,omitempty"`
	Response *Response `json:"response,omitempty"`
	// Received is every request a backend recorded during the step, in
	// arrival order across backends.
	Received []fakebackend.Request `json:"received,omitempty"`
}

// Failure is one expectation that did not hold. Step is 0 for the checks
// made at the end of the scenario (final, and malformed HTTP seen by a
// backend).
type Failure struct {
	Step    int    `json:"step,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

func (f Failure) String() string {
	if f.Step == 0 {
		return "end: " + f.Message
	}
	return fmt.Sprintf("step %d: %s", f.Step, f.Message)
}

// Run drives the proxy in env through the scenario's steps, one at a time,
// and checks every expectation. Failed expectations are in the Result; the
// error is for a run that could not be carried out: a backend missing from
// env, a backend that does not obey its control calls, or ctx ending.
//
// Which backend received a request is read from the backends' records, not
// from the response: the records of a step are those made between sending
// its request and reading its response. Steps run one at a time, each
// request on a fresh connection, so a proxy's retries and replays land in
// the step that caused them.
func (s Scenario) Run(ctx context.Context, env Env) (Result, error) {
	res := Result{ID: s.ID, Profile: env.Profile}
	topo := s.Topology()
	for _, b := range topo.Backends {
		if env.Backends[b.Name] == nil {
			return res, fmt.Errorf("scenario %s: no backend %q in env", s.ID, b.Name)
		}
	}
	if env.ProxyAddr == "" {
		return res, fmt.Errorf("scenario %s: no proxy address in env", s.ID)
	}
	r := &runner{s: s, env: env, topo: topo, res: &res}
	if r.env.Dial == nil {
		r.env.Dial = (&net.Dialer{}).DialContext
	}
	if r.env.Margin <= 0 {
		r.env.Margin = 2
	}
	r.vars = map[string]string{"proxy": env.ProxyAddr}
	for name, b := range env.Backends {
		r.vars["backend."+name] = b.Addr()
	}
	for _, b := range topo.Backends {
		if err := r.apply(ctx, b); err != nil {
			return res, err
		}
	}
	base, err := r.counts(ctx)
	if err != nil {
		return res, err
	}
	for i := range s.doc.Steps {
		if err := r.step(ctx, i); err != nil {
			return res, err
		}
	}
	if err := r.end(ctx, base); err != nil {
		return res, err
	}
	return res, nil
}

type runner struct {
	s    Scenario
	env  Env
	topo Topology
	res  *Result
	vars map[string]string
}

func (r *runner) apply(ctx context.Context, b BackendSpec) error {
	be := r.env.Backends[b.Name]
	if err := be.SetMode(ctx, b.Mode); err != nil {
		return fmt.Errorf("backend %s: setting mode %s: %w", b.Name, b.Mode, err)
	}
	if err := be.SetDefault(ctx, b.Default); err != nil {
		return fmt.Errorf("backend %s: setting the default behaviour: %w", b.Name, err)
	}
	if len(b.Queue) > 0 {
		if err := be.Enqueue(ctx, b.Queue...); err != nil {
			return fmt.Errorf("backend %s: enqueuing behaviours: %w", b.Name, err)
		}
	}
	return nil
}

func (r *runner) fail(step int, format string, args ...any) {
	line := r.s.finalLine
	if step > 0 {
		line = r.s.stepLines[step-1]
	}
	r.res.Failures = append(r.res.Failures, Failure{Step: step, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (r *runner) step(ctx context.Context, i int) error {
	st := &r.s.doc.Steps[i]
	sr := StepResult{Step: i + 1, Line: r.s.stepLines[i], Name: st.Name}
	defer func() { r.res.Steps = append(r.res.Steps, sr) }()
	switch {
	case st.SetMode != nil:
		sr.Kind = "set_mode"
		if err := r.env.Backends[st.SetMode.Backend].SetMode(ctx, st.SetMode.Mode); err != nil {
			return fmt.Errorf("step %d: backend %s: setting mode %s: %w", i+1, st.SetMode.Backend, st.SetMode.Mode, err)
		}
	case st.Enqueue != nil:
		sr.Kind = "enqueue"
		if err := r.env.Backends[st.Enqueue.Backend].Enqueue(ctx, st.Enqueue.Behaviours...); err != nil {
			return fmt.Errorf("step %d: backend %s: enqueuing behaviours: %w", i+1, st.Enqueue.Backend, err)
		}
	case st.SetDefault != nil:
		sr.Kind = "set_default"
		if err := r.env.Backends[st.SetDefault.Backend].SetDefault(ctx, st.SetDefault.Behaviour); err != nil {
			return fmt.Errorf("step %d: backend %s: setting the default behaviour: %w", i+1, st.SetDefault.Backend, err)
		}
	case st.Request != nil:
		sr.Kind = "request"
		return r.request(ctx, i, st, &sr)
	}
	return nil
}

func (r *runner) request(ctx context.Context, i int, st *stepDoc, sr *StepResult) error {
	raw, method := buildRequest(st.Request, r.vars)
	sr.Sent = raw
	before, err := r.counts(ctx)
	if err != nil {
		return fmt.Errorf("step %d: %w", i+1, err)
	}
	timeout := r.timeout(st)
	resp := exchange(ctx, r.env.Dial, r.env.ProxyAddr, raw, method, timeout)
	sr.Response = resp
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("step %d: %w", i+1, err)
	}
	r.settle(ctx, resp, before, timeout)
	sr.Received, err = r.since(ctx, before)
	if err != nil {
		return fmt.Errorf("step %d: %w", i+1, err)
	}
	if st.Expect != nil {
		ck := &check{resp: resp, received: sr.Received, vars: r.vars, profile: r.env.Profile}
		for _, msg := range ck.expect(st.Expect) {
			r.fail(i+1, "%s", msg)
		}
	}
	return nil
}

// timeout is how long the client waits for a response: long enough for the
// proxy to try every backend up to both of its timeouts, times the margin.
func (r *runner) timeout(st *stepDoc) time.Duration {
	if st.Timeout != 0 {
		return st.Timeout.Std()
	}
	per := r.topo.ConnectTimeout + r.topo.ReadTimeout
	d := time.Duration(r.env.Margin * float64(per) * float64(len(r.topo.Backends)))
	return max(d, time.Second)
}

// settle waits until the backend that the response names has recorded the
// request, in case a backend answers before its record is visible. The
// header is only a hint of whom to wait for; what the step's expectations
// see comes from the records.
func (r *runner) settle(ctx context.Context, resp *Response, before map[string]int, timeout time.Duration) {
	v := resp.Values("X-Proxyspec-Backend")
	if len(v) == 0 {
		return
	}
	be, ok := r.env.Backends[v[0]]
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, min(timeout, time.Second))
	defer cancel()
	be.WaitRequests(ctx, before[v[0]]+1)
}

func (r *runner) counts(ctx context.Context) (map[string]int, error) {
	n := map[string]int{}
	for name, be := range r.env.Backends {
		reqs, err := be.Requests(ctx)
		if err != nil {
			return nil, fmt.Errorf("backend %s: reading records: %w", name, err)
		}
		n[name] = len(reqs)
	}
	return n, nil
}

// since returns the requests every backend recorded after before, in
// arrival order.
func (r *runner) since(ctx context.Context, before map[string]int) ([]fakebackend.Request, error) {
	var out []fakebackend.Request
	for name, be := range r.env.Backends {
		reqs, err := be.Requests(ctx)
		if err != nil {
			return nil, fmt.Errorf("backend %s: reading records: %w", name, err)
		}
		if n := before[name]; n < len(reqs) {
			out = append(out, reqs[n:]...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Backend < out[j].Backend
	})
	return out, nil
}

// end checks the final block, and fails the scenario if any backend saw
// malformed HTTP: a proxy that passes the expectations while breaking RFC
// 9112 on the way has not passed.
func (r *runner) end(ctx context.Context, base map[string]int) error {
	all, err := r.since(ctx, base)
	if err != nil {
		return fmt.Errorf("end: %w", err)
	}
	got := map[string]int{}
	for _, q := range all {
		got[q.Backend]++
	}
	if f := r.s.doc.Final; f != nil {
		for _, name := range sortedKeys(f.Received) {
			if want := f.Received[name]; got[name] != want {
				r.fail(0, "backend %s received %s, expected %d", name, plural(got[name], "request"), want)
			}
		}
		for _, name := range sortedKeys(f.ReceivedAtLeast) {
			if want := f.ReceivedAtLeast[name]; got[name] < want {
				r.fail(0, "backend %s received %s, expected at least %d", name, plural(got[name], "request"), want)
			}
		}
		if f.Total != nil && len(all) != *f.Total {
			r.fail(0, "backends received %s in all, expected %d", plural(len(all), "request"), *f.Total)
		}
	}
	seen := map[string]bool{}
	for _, q := range all {
		for _, v := range q.Violations {
			if key := q.Backend + "\x00" + v.Rule; !seen[key] {
				seen[key] = true
				r.fail(0, "the proxy sent malformed HTTP to backend %s: %s: %s (request %s %s)", q.Backend, v.Rule, v.Detail, q.Method, q.Target)
			}
		}
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// buildRequest renders a request step as bytes. Without raw, it is an
// HTTP/1.1 request with the Host the client would send (the proxy's
// address) unless the step sets one, and a Content-Length for a body unless
// the step sets the framing itself.
func buildRequest(q *requestDoc, vars map[string]string) (raw []byte, method string) {
	if q.Raw != nil {
		s := expand(*q.Raw, vars)
		method, _, _ = strings.Cut(s, " ")
		return []byte(s), method
	}
	method, target := q.Method, expand(q.Target, vars)
	if method == "" {
		method = "GET"
	}
	if target == "" {
		target = "/"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	if !hasField(q.Headers, "Host") {
		fmt.Fprintf(&b, "Host: %s\r\n", vars["proxy"])
	}
	for _, h := range q.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h.Name, expand(h.Value, vars))
	}
	var body string
	if q.Body != nil {
		body = expand(*q.Body, vars)
		if !hasField(q.Headers, "Content-Length") && !hasField(q.Headers, "Transfer-Encoding") {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		}
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String()), method
}

func hasField(fs []fakebackend.Field, name string) bool { return len(fieldValues(fs, name)) > 0 }

// expand replaces ${proxy} and ${backend.NAME}; loading has checked that
// every placeholder is known.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}
