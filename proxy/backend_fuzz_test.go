package proxy

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// FuzzParseBackend checks the backend string parser on arbitrary input: it
// never panics; an accepted string yields a dialable host:port (a host the
// parser itself accepts again, a port in 1..65535) and a Host header value
// that net/http will send, and parsing the result again gives the same
// backend; a rejected string is named in the error, so that an operator sees
// which of several backends was wrong.
func FuzzParseBackend(f *testing.F) {
	for _, s := range []string{
		"http://backend-1:8080", "h2://10.0.0.7:9000", "host:port", "host", "HTTP://H:80/p?q#f",
		"[::1]:8080", "http://[fe80::1%25eth0]:80", "[fe80::1%2525]", "[::ffff:1.2.3.4]", "::1",
		"host:0080", "host:65536", "host:99999999999999999999", "user@host", "https://h", "ftp://h",
		"http://", ":80", "[", "[]:1", "[::1]x", "a b", "h:\u0660", "xn--bcher-kva.example", "_:1",
		"http://h:1/#@x", "http://h?x@y", "h2://[::1]:1%", "host:+80", "host:-1", "1.2.3.4.5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseBackend(s)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("parseBackend(%q): error %q does not name the input", s, err)
			}
			return
		}
		host, port, err := net.SplitHostPort(b.addr)
		if err != nil {
			t.Fatalf("parseBackend(%q): addr %q is not host:port: %v", s, b.addr, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			t.Fatalf("parseBackend(%q): addr %q: port %q is not a canonical number in 1..65535", s, b.addr, port)
		}
		if host == "" {
			t.Fatalf("parseBackend(%q): addr %q has no host", s, b.addr)
		}
		if strings.Contains(host, ":") {
			if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
				t.Fatalf("parseBackend(%q): addr %q: host %q is not an IPv6 literal: %v", s, b.addr, host, err)
			}
		}
		if !httpguts.ValidHostHeader(b.host) {
			t.Fatalf("parseBackend(%q): Host value %q would be refused by net/http", s, b.host)
		}
		// The Host value is the authority with the default port left out.
		if want := strings.TrimSuffix(b.addr, ":80"); b.host != want {
			t.Fatalf("parseBackend(%q): Host %q, want %q (addr %q)", s, b.host, want, b.addr)
		}
		// A zone is written %25 in a URL (RFC 6874); the dial address carries
		// it raw, which is ambiguous to read back ("%25" could be an escape),
		// so zoned addresses are read back in URL form only.
		forms := []string{b.addr, "http://" + b.addr, "h2://" + b.host + "/"}
		if strings.Contains(b.addr, "%") {
			forms = []string{"http://" + strings.Replace(b.addr, "%", "%25", 1)}
		}
		for _, again := range forms {
			b2, err := parseBackend(again)
			if err != nil {
				t.Fatalf("parseBackend(%q) = %+v, but its form %q is rejected: %v", s, b, again, err)
			}
			if b2 != b {
				t.Fatalf("parseBackend(%q) = %+v, but its form %q gives %+v", s, b, again, b2)
			}
		}
	})
}
