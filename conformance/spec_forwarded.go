package conformance

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func init() {
	addGroup("forwarded", func(s *Suite) {
		seed := []Profile{ProfileSeed}
		both := []Profile{ProfileSeed, ProfileRFC9110}

		// X-Forwarded-For is a convention, not part of RFC 9110: only the
		// seed promises it.
		Table(s, Meta{
			Level:    MUST,
			Source:   "seed §Headers added to forwarded requests: X-Forwarded-For carries the client IP",
			Needs:    []Feature{FeatureXForwardedFor},
			Profiles: seed,
		}, func(e *Env, incoming []string) {
			e.Start(TopologyRequest{Backends: 1})
			var lines []string
			for _, v := range incoming {
				lines = append(lines, "X-Forwarded-For: "+v)
			}

			x := e.Get("/forwarded/x-forwarded-for", lines...)

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			xff := got[0].Values("X-Forwarded-For")
			want := append(listTokens(incoming), clientIP(e))
			Expect(xff).To(HaveLen(1), "X-Forwarded-For lines the backend got: the client IP is appended to the one list")
			Expect(strings.ToLower(xff[0])).To(Equal(strings.Join(want, ", ")), "X-Forwarded-For: the incoming list, in order, then the client IP after \", \"")
		},
			Entry(Meta{ID: "forwarded/x-forwarded-for/added", Title: "adds X-Forwarded-For with the client's IP"}, []string(nil)),
			Entry(Meta{ID: "forwarded/x-forwarded-for/appended", Title: "appends the client's IP to an existing X-Forwarded-For list"},
				[]string{"203.0.113.7, 198.51.100.2"}),
			Entry(Meta{ID: "forwarded/x-forwarded-for/multiple-lines", Title: "combines several X-Forwarded-For lines in order, then appends the client's IP"},
				[]string{"203.0.113.7", "198.51.100.2, 2001:db8::1"}),
		)

		s.It(Meta{
			ID:       "forwarded/via/added",
			Title:    "adds a well-formed Via naming the protocol it received (seed: exactly \"1.1 rws\")",
			Level:    MUST,
			Source:   "RFC 9110 §7.6.3: Via = received-protocol RWS received-by [ RWS comment ], one member per intermediary; seed §Headers: Via: 1.1 rws",
			Needs:    []Feature{FeatureVia},
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Get("/forwarded/via/added")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			via := got[0].Values("Via")
			if e.Profile() == ProfileSeed {
				Expect(via).To(Equal([]string{"1.1 rws"}), "Via the backend got")
				return
			}
			if len(via) == 0 {
				// RFC 9110 §7.6.3 asks a gateway for Via, yet leaving it
				// out is the common product choice; the profile only
				// judges a Via that is sent.
				return
			}
			els, err := parseVia(via)
			Expect(err).NotTo(HaveOccurred(), "Via the backend got: %q", via)
			Expect(els).To(HaveLen(1), "Via members: the client sent none, so only the proxy's own may arrive: %q", via)
			Expect(els[0].version()).To(Equal("1.1"), "received-protocol of the proxy's Via member: the client spoke HTTP/1.1: %q", via)
		})

		s.It(Meta{
			ID:       "forwarded/via/appended",
			Title:    "keeps an incoming Via list first, in order, and appends its own member after it",
			Level:    MUST,
			Source:   "RFC 9110 §7.6.3: each intermediary appends its own information, so the list follows the order of forwarding; seed §Headers: Via: 1.1 rws",
			Needs:    []Feature{FeatureVia},
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			// Members with different protocols cannot be merged (§7.6.3
			// allows merging only identical received-protocols), and the
			// comma in the comment must not split the member.
			const incoming = "1.0 fred, 2 gw.example:8443 (Example/1.0, beta)"

			x := e.Get("/forwarded/via/appended", "Via: "+incoming)

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			via := got[0].Values("Via")
			if e.Profile() == ProfileSeed {
				Expect(strings.Join(via, ", ")).To(Equal(incoming+", 1.1 rws"), "Via the backend got")
				return
			}
			els, err := parseVia(via)
			Expect(err).NotTo(HaveOccurred(), "Via the backend got: %q", via)
			Expect(len(els)).To(BeNumerically(">=", 2), "Via members the backend got: the client's two must arrive: %q", via)
			// Comments may be dropped by any recipient (§7.6.3).
			Expect([]string{els[0].String(), els[1].String()}).To(Equal([]string{"1.0 fred", "2 gw.example:8443"}),
				"the client's Via members, first and in order: %q", via)
			Expect(len(els)).To(BeNumerically("<=", 3), "Via members: the client's two and at most one of the proxy's: %q", via)
			if len(els) == 3 {
				Expect(els[2].version()).To(Equal("1.1"), "received-protocol of the proxy's Via member: %q", via)
			}
		})

		s.It(Meta{
			ID:       "forwarded/via/http10-client",
			Title:    "names HTTP/1.0 in its Via member for a request it received over HTTP/1.0 (seed: exactly \"1.0 rws\")",
			Level:    MUST,
			Source:   "RFC 9110 §7.6.3: received-protocol is the protocol of the message as the intermediary received it, not the one it forwards; seed §Headers: Via: 1.1 rws, for the HTTP/1.1 it is written for",
			Needs:    []Feature{FeatureVia},
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Send("GET /forwarded/via/http10-client HTTP/1.0\r\nHost: " + e.Proxy + "\r\n\r\n")

			Expect(x.Err).NotTo(HaveOccurred(), "the response to an HTTP/1.0 request")
			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			via := got[0].Values("Via")
			if e.Profile() == ProfileSeed {
				Expect(via).To(Equal([]string{"1.0 rws"}), "Via the backend got for an HTTP/1.0 request")
				return
			}
			if len(via) == 0 {
				return // as in forwarded/via/added: only a Via that is sent is judged
			}
			els, err := parseVia(via)
			Expect(err).NotTo(HaveOccurred(), "Via the backend got: %q", via)
			Expect(els).To(HaveLen(1), "Via members: the client sent none, so only the proxy's own may arrive: %q", via)
			Expect(els[0].version()).To(Equal("1.0"), "received-protocol of the proxy's Via member: the client spoke HTTP/1.0: %q", via)
		})

		s.It(Meta{
			ID:       "forwarded/host/replaced",
			Title:    "sends the backend's host and port as Host, in place of the client's",
			Level:    MUST,
			Source:   "seed §Headers added to forwarded requests: Host is the backend host (port omitted when it is 80, RFC 9110 §7.2, §4.2.1)",
			Profiles: seed,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Get("/forwarded/host/replaced")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			Expect(got[0].Values("Host")).To(Equal([]string{hostOf(e.Topology().Backends[0])}), "Host the backend got (the client sent %s)", e.Proxy)
		})

		s.It(Meta{
			ID:       "forwarded/end-to-end-kept",
			Title:    "forwards end-to-end request fields unchanged, repeated fields in their order",
			Level:    MUST,
			Source:   "RFC 9110 §5.3: a proxy must not change the order of field line values with the same name; §7.6: only hop-by-hop fields are the proxy's",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Get("/forwarded/end-to-end-kept",
				"Accept: text/html, application/json;q=0.9",
				"X-Multi: one",
				"Authorization: Bearer token-123",
				"X-Multi: two, three",
				"X-Case: MiXeD Value",
				"X-Multi: four")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1), "requests backend a received")
			r := got[0]
			// Several lines may be combined into one (§5.3): compare lists.
			Expect(listElements(r.Values("X-Multi"))).To(Equal([]string{"one", "two", "three", "four"}), "X-Multi values, in order")
			Expect(r.Values("Authorization")).To(Equal([]string{"Bearer token-123"}), "Authorization is end-to-end")
			Expect(listElements(r.Values("Accept"))).To(Equal([]string{"text/html", "application/json;q=0.9"}), "Accept")
			Expect(r.Values("X-Case")).To(Equal([]string{"MiXeD Value"}), "a value's case is kept")
		})

		s.It(Meta{
			ID:       "forwarded/end-to-end-kept-response",
			Title:    "relays end-to-end response fields unchanged: repeated fields in order, Set-Cookie lines never combined",
			Level:    MUST,
			Source:   "RFC 9110 §5.3: order of same-name field lines is kept, and Set-Cookie lines cannot be combined (RFC 6265 §3)",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			e.SetDefault("a", fakebackend.Behaviour{Header: parseFields([]string{
				"Set-Cookie: a=1; Path=/",
				"X-Multi: one",
				"Set-Cookie: b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
				"X-Multi: two",
			})})

			x := e.Get("/forwarded/end-to-end-kept-response")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			Expect(x.Header("Set-Cookie")).To(Equal([]string{"a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT"}),
				"Set-Cookie lines the client got, separate and in order")
			Expect(listElements(x.Header("X-Multi"))).To(Equal([]string{"one", "two"}), "X-Multi values, in order")
		})
	})
}

// clientIP is the address the proxy sees the spec's client connect from:
// the loopback address it dials when the proxy listens on loopback. A proxy
// elsewhere (in a container) sees a gateway address the spec cannot know.
func clientIP(e *Env) string {
	ginkgo.GinkgoHelper()
	// A proxy in a container sees the kit's clients come from the
	// network's gateway, which its instance knows.
	if ci, ok := e.inst.(interface{ ClientIP() string }); ok && ci.ClientIP() != "" {
		return ci.ClientIP()
	}
	host, _, err := net.SplitHostPort(e.Proxy)
	Expect(err).NotTo(HaveOccurred(), "proxy address %q", e.Proxy)
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		ginkgo.AddReportEntry(entryState, string(StateNotSupported), ginkgo.ReportEntryVisibilityNever)
		ginkgo.Skip(fmt.Sprintf("%s the proxy listens on %s, not on loopback, so the client IP it sees is unknown", notSupportedPrefix, e.Proxy))
	}
	return a.Unmap().String()
}

// hostOf is the Host value that addresses ep: host and port, the port left
// out when it is http's default (RFC 9110 §4.2.1, §7.2).
func hostOf(ep Endpoint) string {
	if ep.Port == 80 {
		if strings.Contains(ep.Host, ":") {
			return "[" + ep.Host + "]"
		}
		return ep.Host
	}
	return net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
}

// listElements splits the values of a list-based field into its elements,
// case kept, empty ones dropped (RFC 9110 §5.6.1). Values must not hold
// quoted strings or comments with commas.
func listElements(values []string) []string {
	var out []string
	for _, v := range values {
		for el := range strings.SplitSeq(v, ",") {
			if el = strings.TrimSpace(el); el != "" {
				out = append(out, el)
			}
		}
	}
	return out
}

// viaMember is one member of a Via list (RFC 9110 §7.6.3):
// received-protocol RWS received-by [ RWS comment ].
type viaMember struct {
	protocol string // [ protocol-name "/" ] protocol-version
	by       string // pseudonym or uri-host [ ":" port ]
	comment  string // with its parentheses, or ""
}

func (m viaMember) String() string { return m.protocol + " " + m.by }

// version is the protocol version, with a protocol-name of HTTP implied.
func (m viaMember) version() string {
	name, v, ok := strings.Cut(m.protocol, "/")
	if !ok {
		return name
	}
	if !strings.EqualFold(name, "HTTP") {
		return m.protocol
	}
	return v
}

// parseVia parses the values of Via into its members, rejecting a member
// that is not well formed.
func parseVia(values []string) ([]viaMember, error) {
	var out []viaMember
	for _, v := range values {
		raw, err := splitOutsideComments(v)
		if err != nil {
			return nil, fmt.Errorf("via %q: %w", v, err)
		}
		for _, el := range raw {
			m, err := parseViaMember(el)
			if err != nil {
				return nil, fmt.Errorf("via member %q: %w", el, err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// splitOutsideComments splits a list at the commas outside comments
// (RFC 9110 §5.6.5: comments nest and may hold quoted pairs), dropping
// empty elements.
func splitOutsideComments(v string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')':
			if depth == 0 {
				return nil, errors.New("unbalanced ')'")
			}
			depth--
		case c == ',' && depth == 0:
			if el := strings.Trim(v[start:i], " \t"); el != "" {
				out = append(out, el)
			}
			start = i + 1
		}
	}
	if depth != 0 {
		return nil, errors.New("unterminated comment")
	}
	if el := strings.Trim(v[start:], " \t"); el != "" {
		out = append(out, el)
	}
	return out, nil
}

func parseViaMember(el string) (viaMember, error) {
	proto, rest, ok := strings.Cut(el, " ")
	if !ok {
		return viaMember{}, errors.New("want received-protocol SP received-by")
	}
	rest = strings.TrimLeft(rest, " \t")
	by, comment, _ := strings.Cut(rest, " ")
	comment = strings.TrimLeft(comment, " \t")
	m := viaMember{protocol: proto, by: by, comment: comment}
	name, version, hasName := strings.Cut(proto, "/")
	if !hasName {
		name, version = "", name
	}
	if hasName && !isToken(name) || !isToken(version) {
		return m, fmt.Errorf("received-protocol %q: want [name \"/\"] version, both tokens", proto)
	}
	if !isToken(strings.NewReplacer("[", "", "]", "", ":", "").Replace(by)) {
		return m, fmt.Errorf("received-by %q: want a pseudonym or host[:port]", by)
	}
	if comment != "" && (comment[0] != '(' || comment[len(comment)-1] != ')') {
		return m, fmt.Errorf("%q after received-by: want a comment in parentheses", comment)
	}
	return m, nil
}

// isToken reports whether s is a token (RFC 9110 §5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
