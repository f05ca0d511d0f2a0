package conformance

import (
	"bytes"
	"net/http"
	"slices"
	"strings"

	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// hopCase is one hop-by-hop field the proxy must not pass on.
type hopCase struct {
	// send are the header lines the client (or the backend) sends in every
	// profile.
	send []string
	// option are the lines a compliant sender adds to name the field in
	// Connection (RFC 9110 §7.6.1, §7.8, §10.1.4). The rfc9110 run sends
	// them, which turns the RFC's SHOULD into a MUST; the seed run leaves
	// them out, since the seed strips its list whatever Connection says.
	option []string
	// fields must not be passed on.
	fields []string
	// close makes the backend close its connection after answering, with
	// Connection: close next to the case's lines (response direction).
	close bool
	// own are those of fields a proxy may also send of its own accord
	// (response direction): its keep-alive signalling to its client is its
	// business (RFC 9112 §9.3), so only the values the backend sent count
	// as passing the field on, and the proxy's Connection may name it.
	own []string
}

func (c hopCase) lines(p Profile) []string {
	ls := append([]string{}, c.send...)
	if p == ProfileRFC9110 {
		ls = append(ls, c.option...)
	}
	return append(ls, "X-End-To-End: kept")
}

func init() {
	addGroup("hop-by-hop", func(s *Suite) {
		// The client's Connection header and every field it names are
		// meant for the proxy alone. A proxy may send its own Connection
		// (the seed's "close"), so what is checked is that none of the
		// client's connection options travel on.
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9110 §7.6.1: a proxy must remove Connection and the fields it lists before forwarding",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env, connection string) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Get("/hop-by-hop", "Connection: "+connection, "X-Hop-Option: secret", "X-End-To-End: kept")

			Expect(x.Status()).To(Equal(http.StatusOK))
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1))
			Expect(got[0].Has("X-Hop-Option")).To(BeFalse(), "a field named in Connection was forwarded")
			for _, v := range got[0].Values("Connection") {
				Expect(strings.ToLower(v)).NotTo(ContainSubstring("x-hop-option"), "the client's Connection options were forwarded")
			}
			Expect(got[0].Values("X-End-To-End")).To(ConsistOf("kept"), "an end-to-end field is forwarded")
		},
			Entry(Meta{ID: "hop-by-hop/request/connection", Title: "does not forward Connection or a field it names"}, "X-Hop-Option"),
			Entry(Meta{ID: "hop-by-hop/request/connection-list", Title: "does not forward fields named in a Connection list, whatever their case"}, "keep-alive,  x-HOP-option"),
		)

		// Request direction, one field per spec.
		both := []Profile{ProfileSeed, ProfileRFC9110}
		seed := []Profile{ProfileSeed}
		rfc := []Profile{ProfileRFC9110}
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9110 §7.6.1: a proxy must remove the fields named in Connection; seed §Headers: hop-by-hop fields are never forwarded",
			Profiles: both,
		}, requestHop,
			Entry(Meta{
				ID: "hop-by-hop/request/keep-alive", Title: "does not forward Keep-Alive",
				Source: "seed §Headers lists Keep-Alive; RFC 9110 §7.6.1 (the rfc9110 run names it in Connection: keep-alive, as HTTP/1.0 keep-alive clients do)",
			}, hopCase{send: []string{"Keep-Alive: timeout=5, max=100"}, option: []string{"Connection: keep-alive"}, fields: []string{"Keep-Alive"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/te", Title: "does not forward the client's TE",
				Source: "seed §Headers lists TE; RFC 9110 §10.1.4: TE applies to the immediate connection only, and its sender names it in Connection",
			}, hopCase{send: []string{"TE: gzip;q=0.5, deflate"}, option: []string{"Connection: TE"}, fields: []string{"TE"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/te-trailers", Title: "does not forward TE: trailers as the client's (a proxy may announce its own, naming it in Connection)",
				Source: "seed §Headers lists TE; RFC 9110 §10.1.4: TE applies to the immediate connection only, and its sender names it in Connection",
			}, hopCase{send: []string{"TE: trailers"}, option: []string{"Connection: TE"}, fields: []string{"TE"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/upgrade", Title: "does not forward Upgrade",
				Source:   "seed §Headers lists Upgrade (RFC 9110 §7.8 lets a proxy relay an upgrade it supports, so rfc9110 does not require this)",
				Profiles: seed,
			}, hopCase{send: []string{"Upgrade: websocket", "Connection: Upgrade"}, fields: []string{"Upgrade"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/proxy-authorization", Title: "does not forward Proxy-Authorization",
				Source:   "seed §Headers lists Proxy-Authorization (RFC 9110 §11.7.4 lets a proxy relay credentials to the next proxy, so rfc9110 does not require this)",
				Profiles: seed,
			}, hopCase{send: []string{"Proxy-Authorization: Basic cHJveHk6c2VjcmV0"}, fields: []string{"Proxy-Authorization"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/trailer", Title: "does not forward Trailer",
				Source:   "seed §Headers lists Trailers (RFC 2616 §13.5.1's misspelling of Trailer, RFC 9110 §6.6.2), which the reference strips in both spellings",
				Profiles: seed,
			}, hopCase{send: []string{"Trailer: X-Checksum"}, fields: []string{"Trailer"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/trailers", Title: "does not forward a field named Trailers",
				Source:   "seed §Headers lists Trailers",
				Profiles: seed,
			}, hopCase{send: []string{"Trailers: X-Checksum"}, fields: []string{"Trailers"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/connection-lines", Title: "does not forward fields named in any of several Connection lines",
				Source: "RFC 9110 §7.6.1; §5.3: several field lines of a list field are one list",
			}, hopCase{send: []string{"Connection: X-Hop-A", "X-Hop-A: 1", "Connection: x-hop-b", "X-Hop-B: 2"}, fields: []string{"X-Hop-A", "X-Hop-B"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/connection-case", Title: "treats Connection and the names it lists case-insensitively",
				Source: "RFC 9110 §7.6.1; §5.1: field names are case-insensitive",
			}, hopCase{send: []string{"cOnNeCtIoN: X-hOp-OpTiOn", "x-HOP-option: secret"}, fields: []string{"X-Hop-Option"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/connection-whitespace", Title: "parses a Connection list with empty elements, tabs and spaces",
				Source: "RFC 9110 §7.6.1; §5.6.1.2: a recipient must accept empty list elements and optional whitespace",
			}, hopCase{send: []string{"Connection: ,, X-Hop-A ,\t,x-hop-b\t,", "X-Hop-A: 1", "X-Hop-B: 2"}, fields: []string{"X-Hop-A", "X-Hop-B"}}),

			// RFC 9110 §7.6.1's second paragraph: fields known to be
			// hop-by-hop are removed even when Connection does not name
			// them, but only as a SHOULD. The seed runs them as MUSTs above.
			Entry(Meta{
				ID: "hop-by-hop/request/keep-alive-unlisted", Title: "does not forward Keep-Alive even when Connection does not name it",
				Level: SHOULD, Source: "RFC 9110 §7.6.1: intermediaries should remove Keep-Alive whether or not it appears as a connection option", Profiles: rfc,
			}, hopCase{send: []string{"Keep-Alive: timeout=5, max=100"}, fields: []string{"Keep-Alive"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/te-unlisted", Title: "does not forward TE even when Connection does not name it",
				Level: SHOULD, Source: "RFC 9110 §7.6.1: intermediaries should remove TE whether or not it appears as a connection option", Profiles: rfc,
			}, hopCase{send: []string{"TE: gzip;q=0.5, deflate"}, fields: []string{"TE"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/upgrade-unlisted", Title: "does not forward an Upgrade that Connection does not name",
				Level: SHOULD, Source: "RFC 9110 §7.6.1: intermediaries should remove Upgrade whether or not it appears as a connection option; §7.8: an Upgrade not named in Connection is not a request to upgrade", Profiles: rfc,
			}, hopCase{send: []string{"Upgrade: websocket"}, fields: []string{"Upgrade"}}),
			Entry(Meta{
				ID: "hop-by-hop/request/proxy-connection", Title: "does not forward Proxy-Connection",
				Level: SHOULD, Source: "RFC 9110 §7.6.1: intermediaries should remove Proxy-Connection (RFC 9112 Appendix C.2.2)",
			}, hopCase{send: []string{"Proxy-Connection: keep-alive"}, fields: []string{"Proxy-Connection"}}),
		)

		s.It(Meta{
			ID:       "hop-by-hop/request/transfer-encoding",
			Title:    "forwards a chunked request body intact, framed once: re-chunked or with a Content-Length, never both",
			Level:    MUST,
			Source:   "RFC 9112 §6.1: a sender must not send Content-Length with Transfer-Encoding; RFC 9110 §7.6.1: Transfer-Encoding is hop-by-hop; seed §Headers",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Do(http.MethodPost, "/hop-by-hop/transfer-encoding",
				[]string{"Transfer-Encoding: chunked", "X-End-To-End: kept"},
				"5\r\nhello\r\n7;ext=1\r\n, world\r\n1\r\n!\r\n0\r\n\r\n")

			Expect(x.Status()).To(Equal(http.StatusOK))
			got := e.ReceivedBy("a")
			Expect(got).To(HaveLen(1))
			r := got[0]
			Expect(string(r.Body)).To(Equal("hello, world!"), "the body the backend decoded")
			te := r.Values("Transfer-Encoding")
			if len(te) == 0 {
				Expect(r.Values("Content-Length")).To(Equal([]string{"13"}), "without Transfer-Encoding, the body needs exactly one Content-Length")
			} else {
				Expect(te).To(HaveLen(1), "Transfer-Encoding lines: the client's must not be passed on next to the proxy's own")
				Expect(strings.ToLower(te[0])).To(Equal("chunked"), "the proxy's own Transfer-Encoding")
				Expect(r.Has("Content-Length")).To(BeFalse(), "Content-Length next to Transfer-Encoding")
			}
			Expect(r.Values("X-End-To-End")).To(ConsistOf("kept"), "an end-to-end field is forwarded")
		})

		// Response direction: the backend sends the fields.
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9110 §7.6.1: a proxy must remove Connection and the fields it lists before forwarding; seed §Headers: never forwarded back to the client",
			Profiles: both,
		}, responseHop,
			Entry(Meta{
				ID: "hop-by-hop/response/connection-listed", Title: "does not forward a backend's Connection options or the fields they name",
			}, hopCase{send: []string{"Connection: X-Hop-Option", "X-Hop-Option: secret"}, fields: []string{"X-Hop-Option"}}),
			// net/http deletes a response's Connection when it says close,
			// hiding the other options from a proxy built on it.
			Entry(Meta{
				ID: "hop-by-hop/response/connection-listed-close", Title: "does not forward the fields a backend's Connection names next to close",
			}, hopCase{send: []string{"Connection: X-Hop-Option", "X-Hop-Option: secret"}, fields: []string{"X-Hop-Option"}, close: true}),
			Entry(Meta{
				ID: "hop-by-hop/response/keep-alive", Title: "does not forward a backend's Keep-Alive",
				Source: "seed §Headers lists Keep-Alive; RFC 9110 §7.6.1 (the rfc9110 run names it in Connection: keep-alive)",
			}, hopCase{send: []string{"Keep-Alive: timeout=77, max=13"}, option: []string{"Connection: keep-alive"}, fields: []string{"Keep-Alive"}, own: []string{"Keep-Alive"}}),
			Entry(Meta{
				ID: "hop-by-hop/response/upgrade", Title: "does not forward a backend's Upgrade advertisement",
				Source: "seed §Headers lists Upgrade; RFC 9110 §7.8: Upgrade applies to the immediate connection (the rfc9110 run names it in Connection)",
			}, hopCase{send: []string{"Upgrade: h2c"}, option: []string{"Connection: Upgrade"}, fields: []string{"Upgrade"}}),
			Entry(Meta{
				ID: "hop-by-hop/response/proxy-authenticate", Title: "does not forward a backend's Proxy-Authenticate",
				Source:   "seed §Headers lists Proxy-Authenticate (RFC 9110 §11.7.1 allows relaying it, so rfc9110 does not require this)",
				Profiles: seed,
			}, hopCase{send: []string{`Proxy-Authenticate: Basic realm="backend"`}, fields: []string{"Proxy-Authenticate"}}),
			Entry(Meta{
				ID: "hop-by-hop/response/trailer", Title: "does not forward a backend's Trailer on a response it does not send chunked with trailers",
				Source:   "seed §Headers lists Trailers (RFC 2616 §13.5.1's misspelling of Trailer); RFC 9110 §6.6.2",
				Profiles: seed,
			}, hopCase{send: []string{"Trailer: X-Checksum"}, fields: []string{"Trailer"}}),
			Entry(Meta{
				ID: "hop-by-hop/response/connection-lines", Title: "does not forward fields named in any of a backend's several Connection lines",
				Source: "RFC 9110 §7.6.1; §5.3: several field lines of a list field are one list",
			}, hopCase{send: []string{"Connection: X-Hop-A", "X-Hop-A: 1", "Connection: x-hop-b", "X-Hop-B: 2"}, fields: []string{"X-Hop-A", "X-Hop-B"}}),
			Entry(Meta{
				ID: "hop-by-hop/response/connection-case", Title: "treats a backend's Connection and the names it lists case-insensitively",
				Source: "RFC 9110 §7.6.1; §5.1: field names are case-insensitive",
			}, hopCase{send: []string{"cOnNeCtIoN: X-hOp-OpTiOn", "x-HOP-option: secret"}, fields: []string{"X-Hop-Option"}}),
			Entry(Meta{
				ID: "hop-by-hop/response/proxy-connection", Title: "does not forward a backend's Proxy-Connection",
				Level: SHOULD, Source: "RFC 9110 §7.6.1: intermediaries should remove Proxy-Connection (RFC 9112 Appendix C.2.2)",
			}, hopCase{send: []string{"Proxy-Connection: keep-alive"}, fields: []string{"Proxy-Connection"}}),
		)

		s.It(Meta{
			ID:       "hop-by-hop/response/transfer-encoding",
			Title:    "relays a chunked response body intact, framed once: re-chunked, with a Content-Length or by closing, never with two framings",
			Level:    MUST,
			Source:   "RFC 9112 §6.1: a sender must not send Content-Length with Transfer-Encoding, nor chunked twice; RFC 9110 §7.6.1: Transfer-Encoding is hop-by-hop",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			const body = "hello, chunked world"
			e.SetDefault("a", fakebackend.Behaviour{Framing: "chunked", ChunkSize: 4, Body: fakebackend.Text(body)})

			x := e.Send(RawRequest(http.MethodGet, "/hop-by-hop/response/transfer-encoding", e.Proxy, nil, ""))

			head := finalHead(x.Raw)
			Expect(head).NotTo(BeNil(), "no response head arrived: %v", x.Err)
			te := fieldValues(head, "Transfer-Encoding")
			Expect(len(te)).To(BeNumerically("<=", 1), "Transfer-Encoding lines in the response: the backend's must not be passed on next to the proxy's own")
			if len(te) == 1 {
				Expect(strings.ToLower(te[0])).To(Equal("chunked"), "Transfer-Encoding in the response")
				Expect(fieldValues(head, "Content-Length")).To(BeEmpty(), "Content-Length next to Transfer-Encoding")
			}
			Expect(x.Err).NotTo(HaveOccurred(), "reading the response")
			Expect(x.Status()).To(Equal(http.StatusOK))
			Expect(string(x.Body)).To(Equal(body), "the body the client decoded")
		})
	})
}

// requestHop sends c's lines to the proxy and checks that none of c.fields,
// nor the Connection options naming them, reached the backend, while an
// end-to-end field did.
func requestHop(e *Env, c hopCase) {
	e.Start(TopologyRequest{Backends: 1})

	x := e.Get("/hop-by-hop/request", c.lines(e.Profile())...)

	Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
	got := e.ReceivedBy("a")
	Expect(got).To(HaveLen(1), "requests backend a received")
	r := got[0]
	opts := listTokens(r.Values("Connection"))
	for _, f := range c.fields {
		name := strings.ToLower(f)
		if name == "te" && e.Profile() == ProfileRFC9110 && r.Has("TE") {
			// A proxy may announce its own TE: trailers, as long as it
			// names it in its own Connection (RFC 9110 §10.1.4).
			Expect(r.Values("TE")).To(ConsistOf(WithTransform(strings.ToLower, Equal("trailers"))),
				"TE reached the backend with the client's codings: only a proxy's own TE: trailers may")
			Expect(opts).To(ContainElement("te"), "the proxy sent TE without naming it in Connection (RFC 9110 §10.1.4)")
			continue
		}
		Expect(r.Values(f)).To(BeEmpty(), "%s reached the backend", f)
		Expect(opts).NotTo(ContainElement(name), "the backend's Connection still names %s", f)
	}
	Expect(r.Values("X-End-To-End")).To(ConsistOf("kept"), "an end-to-end field is forwarded")
}

// responseHop makes the backend answer with c's lines and checks that none
// of c.fields, nor the Connection options naming them, reached the client,
// while an end-to-end field did.
func responseHop(e *Env, c hopCase) {
	e.Start(TopologyRequest{Backends: 1})
	e.SetDefault("a", fakebackend.Behaviour{Header: parseFields(c.lines(e.Profile())), Close: c.close})

	x := e.Get("/hop-by-hop/response")

	Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
	opts := listTokens(x.Header("Connection"))
	for _, f := range c.fields {
		if slices.Contains(c.own, f) {
			theirs := listTokens(fieldValues(parseFields(c.send), f))
			var relayed []string
			for _, t := range listTokens(x.Header(f)) {
				if slices.Contains(theirs, t) {
					relayed = append(relayed, t)
				}
			}
			Expect(relayed).To(BeEmpty(), "the backend's %s (%s) reached the client", f, strings.Join(theirs, ", "))
			continue
		}
		Expect(x.Header(f)).To(BeEmpty(), "the backend's %s reached the client", f)
		Expect(opts).NotTo(ContainElement(strings.ToLower(f)), "the client's Connection names the backend's option %s", f)
	}
	Expect(x.Header("X-End-To-End")).To(ConsistOf("kept"), "an end-to-end field of the backend reaches the client")
}

// listTokens splits the values of a list-based field into lower-case
// elements, dropping the empty ones (RFC 9110 §5.6.1).
func listTokens(values []string) []string {
	var out []string
	for _, v := range values {
		for el := range strings.SplitSeq(v, ",") {
			if el = strings.TrimSpace(el); el != "" {
				out = append(out, strings.ToLower(el))
			}
		}
	}
	return out
}

// parseFields turns "Name: value" lines into fields, name case kept.
func parseFields(lines []string) []fakebackend.Field {
	fs := make([]fakebackend.Field, 0, len(lines))
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ":")
		fs = append(fs, fakebackend.Field{Name: name, Value: strings.TrimSpace(value)})
	}
	return fs
}

// finalHead returns the field lines of the first non-1xx response head in
// raw, as they arrived, or nil when no complete head did. It looks at the
// bytes rather than the parsed response because net/http quietly drops a
// Content-Length that comes with Transfer-Encoding.
func finalHead(raw []byte) []fakebackend.Field {
	for len(raw) > 0 {
		head, rest, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
		if !ok {
			return nil
		}
		lines := strings.Split(string(head), "\r\n")
		if f := strings.Fields(lines[0]); len(f) > 1 && len(f[1]) == 3 && f[1][0] == '1' && f[1] != "101" {
			raw = rest
			continue
		}
		fs := parseFields(lines[1:])
		if fs == nil {
			fs = []fakebackend.Field{}
		}
		return fs
	}
	return nil
}

// fieldValues returns the values of the fields named name, in order.
func fieldValues(fs []fakebackend.Field, name string) []string {
	var out []string
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}
