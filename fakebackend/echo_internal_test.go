package fakebackend

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// The hand-written JSON must be byte for byte what encoding/json writes
// without HTML escaping, invalid UTF-8 and line separators included.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{"", "plain", "q\"b\\s/", "\x00\x01\x1f\x7f\t\n\r\b\f", "caf\xe9", "\xff\xfe", "é日本",
		"\u2028\u2029", "<>&", "\xed\xa0\x80", "a\xc3"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		w := strings.TrimSuffix(want.String(), "\n")
		if got := string(appendJSONString(nil, s)); got != w {
			t.Fatalf("string %q: got %s, want %s", s, got, w)
		}
		if got := string(appendJSONString(nil, []byte(s))); got != w {
			t.Fatalf("bytes %q: got %s, want %s", s, got, w)
		}
	}
}

func TestEchoDecodesToTheRecord(t *testing.T) {
	r := &Request{Backend: "b\"", Conn: 7, Seq: 3, Method: "PO\x01ST", Target: "/\xff", Proto: "HTTP/1.1",
		Header:     []Field{{"A", "1"}, {"a", "\x00"}},
		Body:       []byte("\xff\x00bin"),
		Trailers:   []Field{{"T", "v"}},
		Violations: []Violation{{Rule: RuleBareCR}, {Rule: RuleObsFold}}}
	var e Echo
	if err := json.Unmarshal(appendEcho(nil, r), &e); err != nil {
		t.Fatal(err)
	}
	body, err := e.BodyBytes()
	if err != nil || !bytes.Equal(body, r.Body) || e.Backend != r.Backend || e.Conn != 7 || e.Seq != 3 ||
		e.Method != r.Method || e.Target != "/\ufffd" || len(e.Header) != 2 || e.Header[1].Value != "\x00" ||
		len(e.Trailers) != 1 || len(e.Violations) != 2 || e.Violations[1] != RuleObsFold {
		t.Fatalf("echo %+v (body %q, %v)", e, body, err)
	}
}

// FuzzParser feeds arbitrary bytes to the parser: it must not panic, must
// terminate, and must keep the raw head a copy of the input.
func FuzzParser(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"b\"\r\nabc\r\n0\r\nT: v\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
		"\r\n\nGET /\tx HTTP/9.9\n \r\n:\r\nA : \x00\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p := parser{br: bufio.NewReaderSize(bytes.NewReader(in), 16), maxHead: 512, maxBody: 512}
		for range 8 {
			var m message
			if err := p.readHead(&m); err != nil {
				return
			}
			if !bytes.Contains(in, m.rawHead) {
				t.Fatalf("raw head %q not in input", m.rawHead)
			}
			if m.status == 0 && !m.incomplete {
				p.readBody(&m)
			}
			if m.status != 0 || m.incomplete {
				return
			}
		}
	})
}
