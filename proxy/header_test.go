package proxy

import (
	"net/http"
	"reflect"
	"testing"
)

func TestRemoveHopByHop(t *testing.T) {
	h := http.Header{
		"Connection":          {"keep-alive, X-Foo ,\tx-bar", "  X-Baz\t", ",,"},
		"Keep-Alive":          {"timeout=5"},
		"Proxy-Authenticate":  {"Basic"},
		"Proxy-Authorization": {"Basic Zm9vOmJhcg=="},
		"Proxy-Connection":    {"keep-alive"},
		"Te":                  {"trailers"},
		"Trailer":             {"X-Checksum"},
		"Trailers":            {"X-Checksum"},
		"Transfer-Encoding":   {"chunked"},
		"Upgrade":             {"websocket"},
		"X-Foo":               {"1"},
		"X-Bar":               {"2"},
		"X-Baz":               {"3"},
		"X-Keep":              {"4"},
		"Authorization":       {"Bearer t"},
	}
	removeHopByHop(h)
	want := http.Header{"X-Keep": {"4"}, "Authorization": {"Bearer t"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("after removeHopByHop: %v, want %v", h, want)
	}
}

func TestOutboundHeader(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "http://proxy/x", nil)
	r.RemoteAddr = "[::ffff:192.0.2.9]:5000"
	r.Header = http.Header{
		"X-Forwarded-For": {"198.51.100.1", "203.0.113.5, 10.0.0.1"},
		"Via":             {"1.0 fred", "1.1 example.com"},
		"Connection":      {"X-Secret"},
		"X-Secret":        {"s"},
	}
	h := outboundHeader(r)
	if got := h["X-Forwarded-For"]; !reflect.DeepEqual(got, []string{"198.51.100.1, 203.0.113.5, 10.0.0.1, 192.0.2.9"}) {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := h["Via"]; !reflect.DeepEqual(got, []string{"1.0 fred, 1.1 example.com, 1.1 rws"}) {
		t.Errorf("Via = %q", got)
	}
	if _, ok := h["X-Secret"]; ok {
		t.Errorf("X-Secret named in Connection was forwarded")
	}
	if v, ok := h["User-Agent"]; !ok || len(v) != 0 {
		t.Errorf("User-Agent = %q, %v; want a present key without values", v, ok)
	}
	if r.Header.Get("X-Secret") != "s" {
		t.Errorf("outboundHeader modified the client's header")
	}

	r.ProtoMajor, r.ProtoMinor = 1, 0
	r.RemoteAddr = "not an address"
	r.Header = http.Header{"User-Agent": {"curl/8"}}
	h = outboundHeader(r)
	if got := h["Via"]; !reflect.DeepEqual(got, []string{"1.0 rws"}) {
		t.Errorf("Via for an HTTP/1.0 client = %q, want 1.0 rws", got)
	}
	if _, ok := h["X-Forwarded-For"]; ok {
		t.Errorf("X-Forwarded-For added without a client address: %q", h["X-Forwarded-For"])
	}
	if got := h["User-Agent"]; !reflect.DeepEqual(got, []string{"curl/8"}) {
		t.Errorf("User-Agent = %q", got)
	}
}

func TestRequestTarget(t *testing.T) {
	for _, tc := range []struct {
		uri, path, query string
		hasQuery         bool
	}{
		{"/a/b", "/a/b", "", false},
		{"/a%2Fb/./c?x=%20&y=a+b", "/a%2Fb/./c", "x=%20&y=a+b", true},
		{"/api?", "/api", "", true},
		{"//double//slash", "//double//slash", "", false},
		{"*", "*", "", false},
		{"http://evil.example/x?y", "/x", "y", true},
		{"http://evil.example", "/", "", false},
		{"HTTP://evil.example?q", "/", "q", true},
	} {
		r := &http.Request{RequestURI: tc.uri}
		p, q, has := requestTarget(r)
		if p != tc.path || q != tc.query || has != tc.hasQuery {
			t.Errorf("requestTarget(%q) = %q %q %v, want %q %q %v", tc.uri, p, q, has, tc.path, tc.query, tc.hasQuery)
		}
	}
}

// A typical browser request with a few hop-by-hop fields.
func benchHeader() http.Header {
	return http.Header{
		"Accept":            {"text/html,application/xhtml+xml"},
		"Accept-Encoding":   {"gzip, deflate, br"},
		"Accept-Language":   {"en-GB,en;q=0.9"},
		"Cache-Control":     {"no-cache"},
		"Connection":        {"keep-alive, X-Hop"},
		"Cookie":            {"session=abcdef0123456789; theme=dark"},
		"Keep-Alive":        {"timeout=5"},
		"Te":                {"trailers"},
		"User-Agent":        {"Mozilla/5.0 (X11; Linux x86_64)"},
		"X-Hop":             {"1"},
		"X-Forwarded-For":   {"198.51.100.1"},
		"X-Request-Id":      {"0f8fad5b-d9cb-469f-a165-70867728950e"},
		"Transfer-Encoding": {"chunked"},
	}
}

func BenchmarkHopByHopRemove(b *testing.B) {
	src := benchHeader()
	b.ReportAllocs()
	for b.Loop() {
		h := src.Clone()
		removeHopByHop(h)
	}
}

func BenchmarkHopByHopOutboundHeader(b *testing.B) {
	r, _ := http.NewRequest(http.MethodGet, "http://proxy/x", nil)
	r.RemoteAddr = "192.0.2.9:5000"
	r.Header = benchHeader()
	b.ReportAllocs()
	for b.Loop() {
		outboundHeader(r)
	}
}
