package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// FuzzRemoveHopByHop parses a header section the way net/http's server does
// and filters it as the proxy does in both directions. Whatever the
// Connection lines hold (odd tokens, empty elements, commas, whitespace,
// case), nothing hop-by-hop survives, no field named in any Connection line
// survives (RFC 9110 §7.6.1), and every other field is kept with its values
// in order: the filter neither leaks nor over-removes.
func FuzzRemoveHopByHop(f *testing.F) {
	for _, s := range []string{
		"Connection: close\r\nX-A: 1\r\n",
		"Connection: X-A, x-b ,,\t X-C\t\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-D: 4\r\n",
		"connection: keep-alive\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\n",
		"Connection: a\r\nConnection: b\r\nA: 1\r\nB: 2\r\nC: 3\r\n",
		"Connection: ,\r\nConnection:\r\nProxy-Authorization: x\r\nProxy-Connection: y\r\nTrailers: z\r\n",
		"CONNECTION: X-FOO\r\nx-foo: 1\r\nX-Foo: 2\r\nTransfer-Encoding: chunked\r\nTrailer: x\r\n",
		"Connection: content-type, host\r\nContent-Type: a\r\nVia: 1.1 x\r\n",
		"Keep-Alive: 1\r\nTE: x\r\nTrailer: y\r\nUpgrade: z\r\nProxy-Authenticate: w\r\nX-End: 1\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, section string) {
		mh, err := textproto.NewReader(bufio.NewReader(strings.NewReader(section + "\r\n"))).ReadMIMEHeader()
		if err != nil {
			return // the server answers 400; nothing is forwarded
		}
		orig := http.Header(mh)
		h := orig.Clone()
		removeHopByHop(h)

		var named []string
		for _, line := range orig["Connection"] {
			for tok := range strings.SplitSeq(line, ",") {
				if tok = strings.Trim(tok, " \t"); tok != "" {
					named = append(named, tok)
				}
			}
		}
		listed := func(k string) bool {
			return slices.ContainsFunc(named, func(n string) bool { return strings.EqualFold(n, k) })
		}
		for k := range h {
			if slices.ContainsFunc(seedHopByHop, func(hop string) bool { return strings.EqualFold(hop, k) }) {
				t.Fatalf("hop-by-hop field %q survived in %q", k, section)
			}
			if listed(k) {
				t.Fatalf("field %q named in Connection %q survived in %q", k, orig["Connection"], section)
			}
		}
		for k, vv := range orig {
			if hopByHop(k) || listed(k) {
				continue // whether it should go is checked above
			}
			if got := h[k]; !slices.Equal(got, vv) {
				t.Fatalf("end-to-end field %q: %q became %q in %q", k, vv, got, section)
			}
		}
	})
}

// seedHopByHop is the oracle's own list, apart from the proxy's: the seed's
// fields, Proxy-Connection, and Trailer (RFC 9110 §6.6.2).
var seedHopByHop = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "TE", "Trailer", "Trailers", "Transfer-Encoding", "Upgrade"}

// FuzzOutboundHeader checks the whole upstream header built for a client
// request: hop-by-hop fields and fields named in Connection never go out,
// and the proxy's own X-Forwarded-For and Via are appended last to a single
// line, whatever the client sent in them.
func FuzzOutboundHeader(f *testing.F) {
	f.Add("GET / HTTP/1.1\r\nHost: h\r\nConnection: x-forwarded-for\r\nX-Forwarded-For: 6.6.6.6\r\n", "192.0.2.1:5")
	f.Add("GET / HTTP/1.0\r\nVia: 1.0 a, 1.1 b\r\nVia: 2 c\r\nConnection: via\r\n", "[2001:db8::1]:80")
	f.Add("POST /x HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nConnection: TE, Keep-Alive, , Foo\r\nFoo: bar\r\n", "")
	f.Fuzz(func(t *testing.T, head, remote string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head + "\r\n")))
		if err != nil {
			return
		}
		r.RemoteAddr = remote
		out := outboundHeader(r)
		var buf bytes.Buffer
		if err := out.Write(&buf); err != nil {
			t.Fatal(err)
		}
		for k := range out {
			if slices.ContainsFunc(seedHopByHop, func(hop string) bool { return strings.EqualFold(hop, k) }) {
				t.Fatalf("hop-by-hop %q goes upstream for %q", k, head)
			}
		}
		for _, line := range r.Header["Connection"] {
			for tok := range strings.SplitSeq(line, ",") {
				tok = strings.Trim(tok, " \t")
				if tok == "" || strings.EqualFold(tok, "Via") || strings.EqualFold(tok, "X-Forwarded-For") {
					continue // the proxy's own values are its to send
				}
				if _, ok := out[http.CanonicalHeaderKey(tok)]; ok {
					t.Fatalf("%q, named in Connection, goes upstream for %q", tok, head)
				}
			}
		}
		via := out["Via"]
		if len(via) != 1 || !strings.HasSuffix(via[0], viaVersion(r)+" rws") {
			t.Fatalf("Via %q for %q: want one line ending in %q", via, head, viaVersion(r)+" rws")
		}
		if ip, ok := clientIP(remote); ok {
			xff := out["X-Forwarded-For"]
			if len(xff) != 1 || !strings.HasSuffix(xff[0], ip) {
				t.Fatalf("X-Forwarded-For %q for remote %q: want one line ending in %q", xff, remote, ip)
			}
		}
	})
}
