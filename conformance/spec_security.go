package conformance

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// Request smuggling (RFC 9112 §11.2): a request whose framing two parsers
// can read differently. Each spec sends one, often with a second request
// hidden where one reading puts the end of the body, then checks that what
// reached the backend is one unambiguous request or nothing, that the hidden
// request never reached a backend, and that a later request on a new
// connection arrives as itself (a poisoned upstream connection would prefix
// it). The fake backend's RFC 9112 checks add the rest: a proxy that passes
// on both framings, obs-fold, a bare CR or LF fails on those.

// smuggledTarget is the target of the request hidden in an attack.
const smuggledTarget = "/smuggled"

// smuggled is the hidden request.
func smuggled(host string) string {
	return "GET " + smuggledTarget + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
}

// attack is a request built to be read two ways, and what a proxy may do
// with it.
type attack struct {
	// build returns the bytes to send, given the proxy's host:port.
	build func(host string) string
	// seed and rfc are the statuses that count as refusing the request in
	// each profile; a refused request must reach no backend.
	seed, rfc []int
	// forward, when set, allows forwarding instead: the backend must then
	// get exactly this one request.
	forward *forwarded
	// mustClose says the RFC requires the proxy to close the connection
	// after its response. Otherwise the attack carries Connection: close,
	// and any response after the first is an answer to a smuggled request
	// (RFC 9112 §9.6).
	mustClose bool
}

// forwarded is the one request a backend may get from an attack.
type forwarded struct {
	method string
	body   string
	// fields the backend must get with exactly these values.
	fields map[string]string
	// like holds fields the backend must get once, with a value matching
	// a regular expression, where the RFC allows more than one spelling.
	like map[string]string
}

// Status sets.
var (
	badRequest  = []int{http.StatusBadRequest}
	clientError = statusRange(400, 499)
	badFraming  = []int{http.StatusBadRequest, http.StatusNotImplemented}              // RFC 9112 §6.3 item 4 says 400, §6.1 says 501 for a coding not understood
	tooLarge    = []int{http.StatusBadRequest, http.StatusRequestHeaderFieldsTooLarge} // RFC 9110 §5.4 asks for a 4xx, RFC 6585 §5 offers 431
	// codingError is any 4xx, or the 501 RFC 9112 §6.1 prescribes for a
	// transfer coding the server does not understand: a parser that keeps
	// the whitespace around "chunked" refuses a coding it does not know.
	codingError = append(statusRange(400, 499), http.StatusNotImplemented)
)

func statusRange(lo, hi int) []int {
	var s []int
	for c := lo; c <= hi; c++ {
		s = append(s, c)
	}
	return s
}

// request builds a request line, Host, the lines, and the body as is
// (no Content-Length is added).
func request(method, target string, lines []string, body string) func(string) string {
	return func(host string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
		for _, l := range lines {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
		b.WriteString("\r\n")
		b.WriteString(strings.ReplaceAll(body, "{smuggled}", smuggled(host)))
		return b.String()
	}
}

// chunkedHello is a chunked body whose content is "hello"; clLong is a
// Content-Length covering it and the smuggled request after it (CL.TE: a
// proxy reading Content-Length forwards the hidden request as content, one
// reading Transfer-Encoding leaves it pipelined on the client connection).
const chunkedHello = "5\r\nhello\r\n0\r\n\r\n"

func clLong(host string) string {
	return "Content-Length: " + strconv.Itoa(len(chunkedHello)+len(smuggled(host)))
}

// teAttack sends a Transfer-Encoding line te with a Content-Length covering
// the chunked body and a smuggled request after it.
func teAttack(te string) func(string) string {
	return func(host string) string {
		return request(http.MethodPost, "/security/te", []string{te, clLong(host)}, chunkedHello+"{smuggled}")(host)
	}
}

func init() {
	addGroup("security", func(s *Suite) {
		both := []Profile{ProfileSeed, ProfileRFC9110}
		hello := &forwarded{method: http.MethodPost, body: "hello"}

		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §6.1: a server may reject a request with both Content-Length and Transfer-Encoding or process it by Transfer-Encoding alone, and must close the connection after responding; §6.3 item 3: an intermediary must remove the Content-Length before forwarding",
			Profiles: both,
		}, smuggling,
			Entry(Meta{ID: "security/request/cl-te", Title: "reads a request with Content-Length and Transfer-Encoding: chunked as chunked (or refuses it) and closes the connection after"},
				attack{build: teAttack("Transfer-Encoding: chunked"), seed: clientError, rfc: clientError, forward: hello, mustClose: true}),
			Entry(Meta{ID: "security/request/te-cl", Title: "reads a chunked request whose Content-Length is shorter than its body as chunked (or refuses it) and closes the connection after"},
				attack{build: func(host string) string {
					hidden := smuggled(host)
					size := strconv.FormatInt(int64(len(hidden)), 16)
					return request(http.MethodPost, "/security/te-cl",
						[]string{"Transfer-Encoding: chunked", "Content-Length: " + strconv.Itoa(len(size)+2)},
						size+"\r\n"+hidden+"\r\n0\r\n\r\n")(host)
				}, seed: clientError, rfc: clientError, forward: &forwarded{method: http.MethodPost, body: "{smuggled}"}, mustClose: true}),
			Entry(Meta{ID: "security/request/te-case", Title: "reads Transfer-Encoding: ChUnKeD next to Content-Length as chunked (or refuses it)",
				Source: "RFC 9112 §7: transfer coding names are case-insensitive; §6.1"},
				attack{build: teAttack("Transfer-Encoding: ChUnKeD"), seed: clientError, rfc: clientError, forward: hello, mustClose: true}),
			Entry(Meta{ID: "security/request/te-trailing-whitespace", Title: "reads 'Transfer-Encoding: chunked' with trailing whitespace next to Content-Length as chunked (or refuses it)",
				Source: "RFC 9112 §5: whitespace around a field value is not part of it; §6.1"},
				attack{build: teAttack("Transfer-Encoding: chunked \t "), seed: codingError, rfc: codingError, forward: hello, mustClose: true}),
			Entry(Meta{ID: "security/request/te-leading-tab", Title: "reads 'Transfer-Encoding:<TAB>chunked' next to Content-Length as chunked (or refuses it)",
				Source: "RFC 9112 §5: OWS, spaces or tabs, may precede a field value; §6.1"},
				attack{build: teAttack("Transfer-Encoding:\tchunked"), seed: codingError, rfc: codingError, forward: hello, mustClose: true}),
			Entry(Meta{ID: "security/request/te-empty-element", Title: "reads 'Transfer-Encoding: , chunked' next to Content-Length as chunked (or refuses it)",
				Source: "RFC 9110 §5.6.1: a recipient must accept empty list elements; RFC 9112 §6.1"},
				attack{build: teAttack("Transfer-Encoding: , chunked"), seed: badFraming, rfc: badFraming, forward: hello, mustClose: true}),
		)

		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §6.3 item 4: a request whose Transfer-Encoding does not end in chunked cannot be delimited: the server must answer 400 and close the connection; §6.1: 501 for a coding it does not understand",
			Profiles: both,
		}, smuggling,
			Entry(Meta{ID: "security/request/te-unknown", Title: "refuses 'Transfer-Encoding: xchunked' next to Content-Length and closes the connection"},
				attack{build: teAttack("Transfer-Encoding: xchunked"), seed: badFraming, rfc: badFraming, mustClose: true}),
			Entry(Meta{ID: "security/request/te-chunked-not-last", Title: "refuses a request whose transfer codings do not end in chunked and closes the connection"},
				attack{build: teAttack("Transfer-Encoding: chunked, identity"), seed: badFraming, rfc: badFraming, mustClose: true}),
			Entry(Meta{ID: "security/request/te-chunked-twice", Title: "refuses a request with chunked applied twice and closes the connection",
				Source: "RFC 9112 §6.1: a sender must not apply chunked more than once; §6.3 item 4"},
				attack{build: teAttack("Transfer-Encoding: chunked, chunked"), seed: badFraming, rfc: badFraming, mustClose: true}),
			Entry(Meta{ID: "security/request/te-split-lines", Title: "refuses Transfer-Encoding lines that combine to 'chunked, identity' and closes the connection",
				Source: "RFC 9110 §5.3: field lines of one name combine into one list; RFC 9112 §6.3 item 4"},
				attack{build: func(host string) string {
					return request(http.MethodPost, "/security/te", []string{"Transfer-Encoding: chunked", "Transfer-Encoding: identity", clLong(host)}, chunkedHello+"{smuggled}")(host)
				}, seed: badFraming, rfc: badFraming, mustClose: true}),
			Entry(Meta{ID: "security/request/te-vertical-tab", Title: "refuses 'Transfer-Encoding:<VT>chunked' (not whitespace in HTTP) and closes the connection",
				Source: "RFC 9110 §5.6.3: OWS is only SP and HTAB; RFC 9112 §6.3 item 4"},
				attack{build: teAttack("Transfer-Encoding:\vchunked"), seed: badFraming, rfc: badFraming, mustClose: true}),
		)

		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §6.3 item 5: a request with an invalid Content-Length must be answered 400 and the connection closed",
			Profiles: both,
		}, smuggling,
			Entry(Meta{ID: "security/request/content-length-conflicting", Title: "refuses two different Content-Length values with 400 and closes the connection"},
				attack{build: func(host string) string {
					return request(http.MethodPost, "/security/cl", []string{"Content-Length: 5", "Content-Length: " + strconv.Itoa(5+len(smuggled(host)))}, "hello{smuggled}")(host)
				}, seed: badRequest, rfc: badRequest, mustClose: true}),
			Entry(Meta{ID: "security/request/content-length-conflicting-list", Title: "refuses a Content-Length listing different values with 400 and closes the connection"},
				attack{build: func(host string) string {
					return request(http.MethodPost, "/security/cl", []string{"Content-Length: 5, " + strconv.Itoa(5+len(smuggled(host)))}, "hello{smuggled}")(host)
				}, seed: badRequest, rfc: badRequest, mustClose: true}),
			Entry(Meta{ID: "security/request/content-length-sign", Title: "refuses 'Content-Length: +5' with 400 and closes the connection",
				Source: "RFC 9110 §8.6: Content-Length = 1*DIGIT; RFC 9112 §6.3 item 5"},
				attack{build: request(http.MethodPost, "/security/cl", []string{"Content-Length: +5"}, "hello{smuggled}"), seed: badRequest, rfc: badRequest, mustClose: true}),
			Entry(Meta{ID: "security/request/content-length-hex", Title: "refuses 'Content-Length: 0x5' with 400 and closes the connection",
				Source: "RFC 9110 §8.6: Content-Length = 1*DIGIT; RFC 9112 §6.3 item 5"},
				attack{build: request(http.MethodPost, "/security/cl", []string{"Content-Length: 0x5"}, "hello{smuggled}"), seed: badRequest, rfc: badRequest, mustClose: true}),
		)

		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9110 §8.6: a recipient may replace a Content-Length repeated with identical values by one, or reject the message",
			Profiles: both,
		}, smuggling,
			Entry(Meta{ID: "security/request/content-length-duplicate", Title: "forwards a request whose Content-Length line is repeated with the same value with one Content-Length (or refuses it)"},
				attack{build: request(http.MethodPost, "/security/cl", []string{"Content-Length: 5", "Content-Length: 5", "Connection: close"}, "hello"), seed: clientError, rfc: clientError, forward: hello}),
			Entry(Meta{ID: "security/request/content-length-duplicate-list", Title: "forwards a request with 'Content-Length: 5, 5' with one Content-Length (or refuses it)"},
				attack{build: request(http.MethodPost, "/security/cl", []string{"Content-Length: 5, 5", "Connection: close"}, "hello"), seed: clientError, rfc: clientError, forward: hello}),
		)

		Table(s, Meta{
			Level:    MUST,
			Profiles: both,
		}, smuggling,
			Entry(Meta{ID: "security/request/space-before-colon", Title: "refuses 'Transfer-Encoding : chunked' (whitespace before the colon) with 400",
				Source: "RFC 9112 §5.1: a server must reject a request with whitespace between a field name and the colon with 400"},
				attack{build: func(host string) string {
					return request(http.MethodPost, "/security/space", []string{"Transfer-Encoding : chunked", clLong(host), "Connection: close"}, chunkedHello+"{smuggled}")(host)
				}, seed: badRequest, rfc: badRequest}),
			Entry(Meta{ID: "security/request/obs-fold", Title: "refuses a folded field line with 400, or unfolds it, never making a Transfer-Encoding of it",
				Source: "RFC 9112 §5.2: a server must reject obs-fold in a request with 400 or replace each obs-fold with one or more SP before forwarding"},
				attack{build: func(host string) string {
					return request(http.MethodPost, "/security/fold", []string{"X-Folded: a", " Transfer-Encoding: chunked", clLong(host), "Connection: close"}, chunkedHello+"{smuggled}")(host)
				}, seed: badRequest, rfc: badRequest, forward: &forwarded{method: http.MethodPost, body: chunkedHello + "{smuggled}", like: map[string]string{"X-Folded": `^a +Transfer-Encoding: chunked$`}}}),
			Entry(Meta{ID: "security/request/bare-lf", Title: "reads a request with bare LF line ends as one request (or refuses it with 400) and forwards it with CRLF",
				Source: "RFC 9112 §2.2: a recipient may take a bare LF as a line end; a sender must send CRLF"},
				attack{build: func(host string) string {
					return "POST /security/bare-lf HTTP/1.1\nHost: " + host + "\nContent-Length: 5\nConnection: close\n\nhello"
				}, seed: badRequest, rfc: badRequest, forward: hello}),
			Entry(Meta{ID: "security/request/bare-lf-in-field", Title: "never takes a bare LF inside the header section for the start of a Transfer-Encoding field another parser would not see",
				Source: "RFC 9112 §2.2: a bare LF may be taken as a line end; RFC 9110 §5.5: a recipient must reject or replace CR, LF and NUL in a field value"},
				attack{build: func(host string) string {
					return request(http.MethodPost, "/security/bare-lf", []string{"X-Probe: a\nTransfer-Encoding: chunked", clLong(host), "Connection: close"}, chunkedHello+"{smuggled}")(host)
				}, seed: badRequest, rfc: clientError, forward: hello}),
			Entry(Meta{ID: "security/request/nul-in-value", Title: "refuses a NUL in a field value with 400, or forwards it replaced by SP",
				Source: "RFC 9110 §5.5: a recipient of CR, LF or NUL in a field value must reject the message or replace them with SP before forwarding"},
				attack{build: request(http.MethodGet, "/security/nul", []string{"X-Probe: a\x00b", "Connection: close"}, ""), seed: badRequest, rfc: badRequest,
					forward: &forwarded{method: http.MethodGet, fields: map[string]string{"X-Probe": "a b"}}}),
			Entry(Meta{ID: "security/request/cr-in-value", Title: "refuses a bare CR in a field value with 400, or forwards it replaced by SP",
				Source: "RFC 9112 §2.2: a recipient must treat a bare CR as invalid or replace it with SP; RFC 9110 §5.5"},
				attack{build: request(http.MethodGet, "/security/cr", []string{"X-Probe: a\rb", "Connection: close"}, ""), seed: badRequest, rfc: badRequest,
					forward: &forwarded{method: http.MethodGet, fields: map[string]string{"X-Probe": "a b"}}}),
			Entry(Meta{ID: "security/request/duplicate-host", Title: "refuses a request with two Host lines with 400",
				Source: "RFC 9112 §3.2: a server must answer 400 to a request with more than one Host field line"},
				attack{build: request(http.MethodGet, "/security/host", []string{"Host: other.example", "Connection: close"}, ""), seed: badRequest, rfc: badRequest}),
			Entry(Meta{ID: "security/request/missing-host", Title: "refuses an HTTP/1.1 request without Host with 400",
				Source: "RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host"},
				attack{build: func(string) string {
					return "GET /security/host HTTP/1.1\r\nConnection: close\r\n\r\n"
				}, seed: badRequest, rfc: badRequest}),
		)

		// A field named in Connection is removed before forwarding (RFC
		// 9110 §7.6.1); naming the framing or Host there must not strip
		// the forwarded request of them.
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9110 §7.6.1: Connection options are removed before forwarding, but a sender must not list fields meant for all recipients; RFC 9112 §6.3, §3.2: the forwarded request still needs its framing and Host",
			Profiles: both,
		}, smuggling,
			Entry(Meta{ID: "security/request/connection-content-length", Title: "keeps a body framed when the client names Content-Length in Connection (or refuses the request)"},
				attack{build: func(host string) string {
					return request(http.MethodPost, "/security/connection", []string{"Connection: Content-Length, close", "Content-Length: " + strconv.Itoa(len(smuggled(host)))}, "{smuggled}")(host)
				}, seed: clientError, rfc: clientError, forward: &forwarded{method: http.MethodPost, body: "{smuggled}"}}),
			Entry(Meta{ID: "security/request/connection-transfer-encoding", Title: "keeps a chunked body framed when the client names Transfer-Encoding in Connection (or refuses the request)"},
				attack{build: func(host string) string {
					hidden := smuggled(host)
					return request(http.MethodPost, "/security/connection", []string{"Connection: Transfer-Encoding, close", "Transfer-Encoding: chunked"},
						strconv.FormatInt(int64(len(hidden)), 16)+"\r\n"+hidden+"\r\n0\r\n\r\n")(host)
				}, seed: clientError, rfc: clientError, forward: &forwarded{method: http.MethodPost, body: "{smuggled}"}}),
			Entry(Meta{ID: "security/request/connection-host", Title: "forwards a request with one Host when the client names Host in Connection (or refuses it)"},
				attack{build: request(http.MethodGet, "/security/connection", []string{"Connection: Host, close"}, ""), seed: clientError, rfc: clientError, forward: &forwarded{method: http.MethodGet}}),
		)

		s.It(Meta{
			ID:       "security/request/large-header-field",
			Title:    "forwards a 128 KiB field intact, or refuses the request with a 4xx; never truncates or drops it",
			Level:    MUST,
			Source:   "RFC 9110 §5.4: a server must answer a field or header section larger than it wishes to process with a 4xx; ignoring such fields invites request smuggling (RFC 9112 §11.2)",
			Profiles: both,
		}, func(e *Env) {
			value := randomToken(6, 128<<10)
			smuggling(e, attack{build: request(http.MethodGet, "/security/large", []string{"X-Large: " + value, "Connection: close"}, ""),
				seed: clientError, rfc: clientError, forward: &forwarded{method: http.MethodGet, fields: map[string]string{"X-Large": value}}})
		})

		s.It(Meta{
			ID:       "security/request/header-section-limit",
			Title:    "refuses a 2 MiB header section with 400 or 431 and forwards nothing",
			Level:    MUST,
			Source:   "RFC 9110 §5.4: a server must answer a header section larger than it wishes to process with a 4xx; RFC 6585 §5: 431 is the specific one, 400 the general; the seed names neither, and the reference keeps net/http's 1 MiB limit",
			Profiles: []Profile{ProfileSeed},
		}, func(e *Env) {
			lines := make([]string, 0, 256)
			for i := range 256 {
				lines = append(lines, fmt.Sprintf("X-Filler-%d: %s", i, randomToken(uint64(100+i), 8<<10)))
			}
			smuggling(e, attack{build: request(http.MethodGet, "/security/limit", append(lines, "Connection: close"), ""), seed: tooLarge, rfc: clientError})
		})
	})
}

// smuggling sends a, then a plain request on a new connection, and checks
// what the client and the backend saw.
func smuggling(e *Env, a attack) {
	ginkgo.GinkgoHelper()
	e.Start(TopologyRequest{Backends: 1})
	raw := a.build(e.Proxy)
	target := strings.Fields(raw)[1]

	st := e.sendToClose(raw)

	Expect(st.finals).NotTo(BeEmpty(), "the client got no response: %v", st.problem())
	Expect(st.statuses()).To(HaveLen(1), "responses on the connection: the proxy answered a request hidden in the first one's body")
	if a.mustClose {
		Expect(st.closed()).To(BeTrue(), "the proxy kept the connection open after this request (RFC 9112 §6.1, §6.3: it must close it): %v", st.end)
	} else {
		Expect(st.closed()).To(BeTrue(), "the proxy kept the connection open after a request with Connection: close (RFC 9112 §9.6): %v", st.end)
	}
	status := st.finals[0].StatusCode
	refuse := a.rfc
	if e.Profile() == ProfileSeed {
		refuse = a.seed
	}
	attackRequests := func() []fakebackend.Request {
		var rs []fakebackend.Request
		for _, r := range e.ReceivedBy("a") {
			Expect(r.Target).NotTo(HavePrefix(smuggledTarget), "a request hidden in the body reached the backend as a request of its own")
			if r.Target == target {
				rs = append(rs, r)
			}
		}
		return rs
	}
	got := attackRequests()
	switch {
	case slices.Contains(refuse, status):
		by := "the proxy"
		if st.finals[0].Header.Get("X-Proxyspec-Backend") != "" {
			by = "the backend, not the proxy,"
		}
		Expect(targets(got)).To(BeEmpty(), "%s refused the request with %d, yet it was forwarded", by, status)
	case a.forward != nil:
		Expect(status).To(Equal(http.StatusOK), "status the client got: want the backend's 200, or one of %v refusing the request", refuse)
		Expect(st.finals[0].Header.Values("X-Proxyspec-Backend")).To(ConsistOf("a"), "the response is the backend's")
		Expect(targets(got)).To(HaveLen(1), "requests the backend got")
		r := got[0]
		Expect(r.Method).To(Equal(a.forward.method), "method the backend got")
		if r.Method != http.MethodGet || a.forward.body != "" || len(r.Body) > 0 {
			expectForwardedBody(r, strings.ReplaceAll(a.forward.body, "{smuggled}", smuggled(e.Proxy)))
		}
		Expect(r.Values("Host")).To(HaveLen(1), "Host lines the backend got")
		for name, v := range a.forward.fields {
			Expect(r.Values(name)).To(Equal([]string{v}), "field %s as the backend got it", name)
		}
		for name, re := range a.forward.like {
			Expect(r.Values(name)).To(HaveExactElements(MatchRegexp(re)), "field %s as the backend got it, against %s", name, re)
		}
	default:
		Expect(status).To(BeElementOf(refuse), "status the client got: the request must be refused")
	}

	ginkgo.By("a plain request on a new connection arrives as itself")
	x := e.Get("/security/after")
	Expect(x.Status()).To(Equal(http.StatusOK), "status of a plain request after the attack")
	all := e.ReceivedBy("a")
	Expect(all).NotTo(BeEmpty())
	Expect(all[len(all)-1].Target).To(Equal("/security/after"), "the last request the backend got")
	Expect(targets(attackRequests())).To(HaveLen(len(got)), "requests for the attack's target after the plain request")
}

// randomToken returns n pseudo-random token characters, valid in a field
// value, from seed.
func randomToken(seed uint64, n int) string {
	t := randomText(seed, n)
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\r' || r == '\n' {
			return '-'
		}
		return r
	}, t)
}
