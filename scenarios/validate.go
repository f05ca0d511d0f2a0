package scenarios

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// Known values of the metadata fields. Features mirror conformance.Feature;
// a test in conformance can hold the two lists together.
var (
	Levels   = []string{"MUST", "SHOULD", "MAY"}
	Profiles = []string{"seed", "rfc9110"}
	Features = []string{
		"path-prefix", "connect-timeout", "read-timeout", "failover",
		"round-robin", "multi-backend", "x-forwarded-for", "via",
	}
	modes   = []string{string(fakebackend.Serve), string(fakebackend.Refuse), string(fakebackend.Blackhole)}
	faults  = []string{string(fakebackend.CloseBeforeResponse), string(fakebackend.ResetBeforeResponse), string(fakebackend.ResetBeforeRequest), string(fakebackend.CloseAfterHeaders), string(fakebackend.ResetAfterHeaders), string(fakebackend.CloseMidBody), string(fakebackend.ResetMidBody), string(fakebackend.Hang), string(fakebackend.HangMidBody)}
	framing = []string{"length", "chunked", "close"}
)

var (
	idPattern      = regexp.MustCompile(`^scenario(/[a-z0-9][a-z0-9._-]*)+$`)
	backendPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	// token is RFC 9110 §5.6.2: method names and field names are tokens.
	tokenPattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	placeholder  = regexp.MustCompile(`\$\{([^}]*)\}`)
)

// checker collects the semantic problems of one document.
type checker struct {
	file     string
	problems Problems
	backends map[string]bool
	profiles []string
}

func (c *checker) add(a at, format string, args ...any) {
	c.problems = append(c.problems, Problem{c.file, a.line(), fmt.Sprintf(format, args...)})
}

func (c *checker) document(d *document, a at) {
	switch {
	case d.ID == "":
		c.add(a.key("id"), "missing id")
	case !idPattern.MatchString(d.ID):
		c.add(a.key("id"), "bad id %q: want lowercase segments under scenario/, such as \"scenario/failover/two-down\"", d.ID)
	}
	c.required(a, "title", d.Title)
	c.required(a, "source", d.Source)
	c.required(a, "feature", d.Feature)
	if d.Level == "" {
		c.add(a.key("level"), "missing level (one of %s)", strings.Join(Levels, ", "))
	} else {
		c.oneOf(a.key("level"), "level", d.Level, Levels)
	}
	if len(d.Profiles) == 0 {
		c.add(a.key("profiles"), "missing profiles (one or more of %s)", strings.Join(Profiles, ", "))
	}
	for i, p := range d.Profiles {
		c.oneOf(a.key("profiles").index(i), "profile", p, Profiles)
	}
	c.profiles = d.Profiles
	for i, f := range d.Needs {
		c.oneOf(a.key("needs").index(i), "feature", f, Features)
	}

	c.topology(&d.Topology, a.key("topology"))

	if len(d.Steps) == 0 {
		c.add(a.key("steps"), "missing steps")
	}
	requests, expects := 0, 0
	for i := range d.Steps {
		s := &d.Steps[i]
		c.step(s, a.key("steps").index(i))
		if s.Request != nil {
			requests++
			if s.Expect != nil {
				expects++
			}
		}
	}
	if len(d.Steps) > 0 && requests == 0 {
		c.add(a.key("steps"), "no request step: a scenario sends at least one request")
	}
	if d.Final != nil {
		c.final(d.Final, a.key("final"))
		expects++
	}
	if requests > 0 && expects == 0 {
		c.add(a.key("steps"), "the scenario checks nothing: give a request step an expect, or add final")
	}
}

func (c *checker) required(a at, key, v string) {
	if strings.TrimSpace(v) == "" {
		c.add(a.key(key), "missing %s", key)
	}
}

func (c *checker) oneOf(a at, what, v string, known []string) {
	for _, k := range known {
		if v == k {
			return
		}
	}
	c.add(a, "unknown %s %q (want one of %s)", what, v, strings.Join(known, ", "))
}

func (c *checker) topology(t *topologyDoc, a at) {
	c.backends = map[string]bool{}
	if len(t.Backends) == 0 {
		c.add(a.key("backends"), "missing backends: a topology has at least one")
	}
	first := map[string]int{}
	for i, b := range t.Backends {
		ba := a.key("backends").index(i)
		switch {
		case b.Name == "":
			c.add(ba.key("name"), "missing backend name")
		case !backendPattern.MatchString(b.Name):
			c.add(ba.key("name"), "bad backend name %q: letters, digits, '-' and '_' only", b.Name)
		default:
			if l, dup := first[b.Name]; dup {
				c.add(ba.key("name"), "duplicate backend name %q (first at line %d)", b.Name, l)
			}
			first[b.Name] = ba.key("name").line()
		}
		c.backends[b.Name] = true
		if b.Mode != "" {
			c.oneOf(ba.key("mode"), "mode", string(b.Mode), modes)
		}
		if b.Default != nil {
			c.behaviour(b.Default, ba.key("default"))
		}
		for j := range b.Queue {
			c.behaviour(&b.Queue[j], ba.key("queue").index(j))
		}
	}
	if t.PathPrefix != "" && !strings.HasPrefix(t.PathPrefix, "/") {
		c.add(a.key("path_prefix"), "bad path_prefix %q: must start with \"/\"", t.PathPrefix)
	}
}

func (c *checker) behaviour(b *fakebackend.Behaviour, a at) {
	n := len(c.problems)
	// Statuses outside 200-599 are allowed on purpose: a scenario may test
	// how a proxy passes on an odd code (RFC 9110 §15: any three digits).
	if b.Status != 0 && (b.Status < 100 || b.Status > 999) {
		c.add(a.key("status"), "bad status %d: want 100 to 999", b.Status)
	}
	if b.Framing != "" {
		c.oneOf(a.key("framing"), "framing", b.Framing, framing)
	}
	if b.ChunkSize < 0 {
		c.add(a.key("chunk_size"), "bad chunk_size %d: must not be negative", b.ChunkSize)
	}
	if len(b.Trailers) > 0 && b.Framing != "chunked" {
		c.add(a.key("trailers"), "trailers need framing: chunked")
	}
	if b.Fault != fakebackend.NoFault {
		c.oneOf(a.key("fault"), "fault", string(b.Fault), faults)
	}
	for i, f := range b.Header {
		if f.Name == "" {
			c.add(a.key("header").index(i), "missing header name")
		}
	}
	for i, inf := range b.Informational {
		if inf.Status < 100 || inf.Status > 199 {
			c.add(a.key("informational").index(i).key("status"), "bad informational status %d: want 100 to 199", inf.Status)
		}
	}
	if b.SlowBody != nil && b.SlowBody.Bytes <= 0 {
		c.add(a.key("slow_body").key("bytes"), "bad slow_body bytes %d: must be positive", b.SlowBody.Bytes)
	}
	// The backend's own rules are the last word, for any added after these.
	if len(c.problems) == n {
		if err := b.Validate(); err != nil {
			c.add(a, "bad behaviour: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
}

func (c *checker) backend(a at, name string) {
	if len(c.backends) == 0 {
		return // "missing backends" says it already
	}
	if name == "" {
		c.add(a, "missing backend")
		return
	}
	if !c.backends[name] {
		c.add(a, "unknown backend %q (topology has %s)", name, c.backendList())
	}
}

func (c *checker) backendList() string {
	names := make([]string, 0, len(c.backends))
	for n := range c.backends {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func (c *checker) step(s *stepDoc, a at) {
	var kinds []string
	if s.Request != nil {
		kinds = append(kinds, "request")
	}
	if s.SetMode != nil {
		kinds = append(kinds, "set_mode")
	}
	if s.Enqueue != nil {
		kinds = append(kinds, "enqueue")
	}
	if s.SetDefault != nil {
		kinds = append(kinds, "set_default")
	}
	switch len(kinds) {
	case 0:
		c.add(a, "empty step: want one of request, set_mode, enqueue, set_default")
	case 1:
	default:
		c.add(a.key(kinds[1]), "a step does one thing: it has both %s and %s", kinds[0], kinds[1])
	}
	if s.Request == nil {
		if s.Expect != nil {
			c.add(a.key("expect"), "expect belongs to a request step")
		}
		if s.Timeout != 0 {
			c.add(a.key("timeout"), "timeout belongs to a request step")
		}
	}
	if r := s.Request; r != nil {
		c.request(r, a.key("request"))
	}
	if e := s.Expect; e != nil {
		c.expect(e, a.key("expect"))
	}
	if m := s.SetMode; m != nil {
		c.backend(a.key("set_mode").key("backend"), m.Backend)
		if m.Mode == "" {
			c.add(a.key("set_mode").key("mode"), "missing mode (one of %s)", strings.Join(modes, ", "))
		} else {
			c.oneOf(a.key("set_mode").key("mode"), "mode", string(m.Mode), modes)
		}
	}
	if q := s.Enqueue; q != nil {
		c.backend(a.key("enqueue").key("backend"), q.Backend)
		if len(q.Behaviours) == 0 {
			c.add(a.key("enqueue").key("behaviours"), "missing behaviours to enqueue")
		}
		for i := range q.Behaviours {
			c.behaviour(&q.Behaviours[i], a.key("enqueue").key("behaviours").index(i))
		}
	}
	if d := s.SetDefault; d != nil {
		c.backend(a.key("set_default").key("backend"), d.Backend)
		c.behaviour(&d.Behaviour, a.key("set_default").key("behaviour"))
	}
}

func (c *checker) request(r *requestDoc, a at) {
	if r.Raw != nil {
		if r.Method != "" || r.Target != "" || len(r.Headers) > 0 || r.Body != nil {
			c.add(a.key("raw"), "raw is the whole request: it excludes method, target, headers and body")
		}
		if *r.Raw == "" {
			c.add(a.key("raw"), "empty raw request")
		}
		c.template(a.key("raw"), *r.Raw)
		return
	}
	if r.Method != "" && !tokenPattern.MatchString(r.Method) {
		c.add(a.key("method"), "bad method %q: a method is a token (RFC 9110 §9.1); send odd bytes with raw", r.Method)
	}
	if strings.ContainsAny(r.Target, " \t\r\n") {
		c.add(a.key("target"), "bad target %q: whitespace is not allowed; send odd bytes with raw", r.Target)
	}
	c.template(a.key("target"), r.Target)
	for i, h := range r.Headers {
		ha := a.key("headers").index(i)
		if !tokenPattern.MatchString(h.Name) {
			c.add(ha.key("name"), "bad header name %q: a field name is a token (RFC 9110 §5.1); send odd bytes with raw", h.Name)
		}
		if strings.ContainsAny(h.Value, "\r\n") {
			c.add(ha.key("value"), "bad value for header %q: CR and LF are not allowed; send odd bytes with raw", h.Name)
		}
		c.template(ha.key("value"), h.Value)
	}
	if r.Body != nil {
		c.template(a.key("body"), *r.Body)
	}
}

// template checks the ${...} placeholders in s: ${proxy} is the proxy's
// host:port and ${backend.NAME} a backend's.
func (c *checker) template(a at, s string) {
	for _, m := range placeholder.FindAllStringSubmatch(s, -1) {
		v := m[1]
		switch {
		case v == "proxy":
		case strings.HasPrefix(v, "backend."):
			if name := strings.TrimPrefix(v, "backend."); !c.backends[name] && len(c.backends) > 0 {
				c.add(a, "placeholder %s names unknown backend %q (topology has %s)", m[0], name, c.backendList())
			}
		default:
			c.add(a, "unknown placeholder %s (want ${proxy} or ${backend.NAME})", m[0])
		}
	}
}

func (c *checker) expect(e *expectDoc, a at) {
	if e.empty() {
		c.add(a, "empty expect")
		return
	}
	if e.Status != nil && len(e.StatusIn) > 0 {
		c.add(a.key("status_in"), "status and status_in exclude each other")
	}
	if e.Backend != "" {
		c.backend(a.key("backend"), e.Backend)
		if e.Forwarded != nil && !*e.Forwarded {
			c.add(a.key("forwarded"), "forwarded: false contradicts backend %q", e.Backend)
		}
	}
	if e.Deliveries != nil && *e.Deliveries < 0 {
		c.add(a.key("deliveries"), "bad deliveries %d: must not be negative", *e.Deliveries)
	}
	c.counts(a.key("received"), e.Received)
	if e.Response != nil {
		if e.Response.Method != "" {
			c.add(a.key("response").key("method"), "method belongs to upstream, not response")
		}
		if e.Response.Target != "" {
			c.add(a.key("response").key("target"), "target belongs to upstream, not response")
		}
		c.message(e.Response, a.key("response"))
	}
	if e.Upstream != nil {
		c.message(e.Upstream, a.key("upstream"))
	}
	if e.AnyOf != nil && len(e.AnyOf) < 2 {
		c.add(a.key("any_of"), "any_of needs at least two alternatives")
	}
	for i := range e.AnyOf {
		c.expect(&e.AnyOf[i], a.key("any_of").index(i))
	}
	for _, p := range sortedKeys(e.ByProfile) {
		pa := a.key("by_profile").key(p)
		c.oneOf(pa, "profile", p, c.profiles)
		sub := e.ByProfile[p]
		c.expect(&sub, pa)
	}
}

func (e *expectDoc) empty() bool {
	return e.Status == nil && len(e.StatusIn) == 0 && e.Aborted == nil && e.Backend == "" &&
		e.Forwarded == nil && e.Deliveries == nil && len(e.Received) == 0 && e.Response == nil &&
		e.Upstream == nil && len(e.AnyOf) == 0 && len(e.ByProfile) == 0
}

func (c *checker) message(m *messageDoc, a at) {
	for i, n := range m.Present {
		c.fieldName(a.key("present").index(i), n)
	}
	for i, n := range m.Absent {
		c.fieldName(a.key("absent").index(i), n)
	}
	for _, kv := range []struct {
		key    string
		fields map[string]string
	}{{"equal", m.Equal}, {"contains", m.Contains}, {"not_contains", m.NotContains}} {
		for _, n := range sortedKeys(kv.fields) {
			c.fieldName(a.key(kv.key).key(n), n)
			c.template(a.key(kv.key).key(n), kv.fields[n])
		}
	}
	c.template(a.key("target"), m.Target)
	if m.Body != nil {
		c.template(a.key("body"), *m.Body)
	}
	c.template(a.key("body_contains"), m.BodyContains)
}

func (c *checker) fieldName(a at, n string) {
	if !tokenPattern.MatchString(n) {
		c.add(a, "bad header name %q: a field name is a token (RFC 9110 §5.1)", n)
	}
}

func (c *checker) counts(a at, m map[string]int) {
	for _, n := range sortedKeys(m) {
		c.backend(a.key(n), n)
		if m[n] < 0 {
			c.add(a.key(n), "bad count %d for backend %q: must not be negative", m[n], n)
		}
	}
}

func (c *checker) final(f *finalDoc, a at) {
	if len(f.Received) == 0 && len(f.ReceivedAtLeast) == 0 && f.Total == nil {
		c.add(a, "empty final")
	}
	c.counts(a.key("received"), f.Received)
	c.counts(a.key("received_at_least"), f.ReceivedAtLeast)
	if f.Total != nil && *f.Total < 0 {
		c.add(a.key("total"), "bad total %d: must not be negative", *f.Total)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
