package fakebackend_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/proxyspec/proxyspec/fakebackend"
)

const get = "GET / HTTP/1.1\r\nHost: h\r\n"

// TestViolations sends hand-written bytes and checks the exact set of rules
// recorded, the answer, and that every violation points at bytes that were
// really sent.
func TestViolations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		raw    string
		rules  []string
		status int // 0: no answer, the request is incomplete
		opts   []fakebackend.Option
	}{
		{"clean get", get + "\r\n", nil, 200, nil},
		{"clean post", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", nil, 200, nil},
		{"clean chunked", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3 ; a = b ;c=\"x\\\"y\"\r\nabc\r\n0\r\nT: v\r\n\r\n", nil, 200, nil},
		{"clean long field line", get + "X: " + strings.Repeat("y", 10000) + "\r\n\r\n", nil, 200, nil},
		{"clean http/1.0", "GET / HTTP/1.0\r\n\r\n", nil, 200, nil},
		{"clean absolute-form and obs-text", "GET http://h/p?q HTTP/1.1\r\nHost: h\r\nX: caf\xe9\r\n\r\n", nil, 200, nil},

		{"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", []string{fakebackend.RuleInvalidRequestLine}, 200, nil},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", []string{fakebackend.RuleInvalidRequestLine}, 200, nil},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", []string{fakebackend.RuleInvalidRequestLine}, 200, nil},
		{"method not a token", "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", []string{fakebackend.RuleInvalidRequestLine}, 200, nil},
		{"no version", "GET /\r\nHost: h\r\n\r\n", []string{fakebackend.RuleInvalidRequestLine}, 200, nil},
		{"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", []string{fakebackend.RuleInvalidVersion}, 200, nil},
		{"long version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", []string{fakebackend.RuleInvalidVersion}, 200, nil},
		{"version 2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", []string{fakebackend.RuleUnsupportedVersion}, 200, nil},
		{"leading empty line", "\r\n" + get + "\r\n", []string{fakebackend.RuleLeadingEmptyLine}, 200, nil},
		{"bare LF", "GET / HTTP/1.1\nHost: h\r\n\n", []string{fakebackend.RuleBareLF}, 200, nil},
		{"bare CR", get + "X: a\rb\r\n\r\n", []string{fakebackend.RuleBareCR}, 200, nil},
		{"obs-fold", get + "X: a\r\n  b\r\n\r\n", []string{fakebackend.RuleObsFold}, 200, nil},
		{"whitespace after request line", "GET / HTTP/1.1\r\n X: a\r\nHost: h\r\n\r\n", []string{fakebackend.RuleObsFold}, 200, nil},
		{"no colon", get + "X-Broken\r\n\r\n", []string{fakebackend.RuleMissingColon}, 200, nil},
		{"empty name", get + ": v\r\n\r\n", []string{fakebackend.RuleEmptyFieldName}, 200, nil},
		{"bad name", get + "X(y): v\r\n\r\n", []string{fakebackend.RuleInvalidFieldName}, 200, nil},
		{"non-ASCII name", get + "X\xe9: v\r\n\r\n", []string{fakebackend.RuleInvalidFieldName}, 200, nil},
		{"space before colon", get + "X : v\r\n\r\n", []string{fakebackend.RuleSpaceBeforeColon}, 200, nil},
		{"NUL in value", get + "X: a\x00b\r\n\r\n", []string{fakebackend.RuleNULInValue}, 200, nil},
		{"CTL in value", get + "X: a\x01b\x7f\r\n\r\n", []string{fakebackend.RuleCTLInValue}, 200, nil},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", []string{fakebackend.RuleMissingHost}, 200, nil},
		{"two Hosts", get + "Host: i\r\n\r\n", []string{fakebackend.RuleDuplicateHost}, 200, nil},
		{"equal Content-Lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
			[]string{fakebackend.RuleDuplicateContentLength}, 200, nil},
		{"Content-Length list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc",
			[]string{fakebackend.RuleDuplicateContentLength}, 200, nil},
		{"conflicting Content-Lengths", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
			[]string{fakebackend.RuleConflictingContentLength}, 400, nil},
		{"signed Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc",
			[]string{fakebackend.RuleInvalidContentLength}, 400, nil},
		{"huge Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
			[]string{fakebackend.RuleInvalidContentLength}, 400, nil},
		{"Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			[]string{fakebackend.RuleContentLengthWithTransferEncoding}, 200, nil},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
			[]string{fakebackend.RuleChunkedNotLast}, 400, nil},
		{"empty Transfer-Encoding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n",
			[]string{fakebackend.RuleChunkedNotLast}, 400, nil},
		{"chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			[]string{fakebackend.RuleChunkedTwice}, 200, nil},
		{"Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			[]string{fakebackend.RuleTransferEncodingHTTP10}, 200, nil},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
			[]string{fakebackend.RuleInvalidChunkSize}, 400, nil},
		{"chunk size 0x", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
			[]string{fakebackend.RuleInvalidChunkSize}, 400, nil},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
			[]string{fakebackend.RuleInvalidChunkSize}, 400, nil},
		{"bad chunk extension", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;=x\r\nabc\r\n0\r\n\r\n",
			[]string{fakebackend.RuleInvalidChunkExt}, 200, nil},
		{"chunk data too long", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
			[]string{fakebackend.RuleMissingChunkCRLF}, 400, nil},
		{"bare LF in chunked body", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\r\n\r\n",
			[]string{fakebackend.RuleBareLF}, 200, nil},
		{"bad trailer", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT : v\r\n\r\n",
			[]string{fakebackend.RuleSpaceBeforeColon}, 200, nil},
		{"short body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc",
			[]string{fakebackend.RuleIncompleteBody}, 0, nil},
		{"short chunked body", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
			[]string{fakebackend.RuleIncompleteBody}, 0, nil},
		{"no last chunk", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n",
			[]string{fakebackend.RuleIncompleteBody}, 0, nil},
		{"short head", get + "X: y",
			[]string{fakebackend.RuleIncompleteHead}, 0, nil},
		{"head too large", get + "X: " + strings.Repeat("y", 300) + "\r\n\r\n",
			[]string{fakebackend.RuleHeadTooLarge}, 431, []fakebackend.Option{fakebackend.WithMaxHead(256)}},
		{"body too large", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
			[]string{fakebackend.RuleBodyTooLarge}, 413, []fakebackend.Option{fakebackend.WithMaxBody(10)}},
		{"chunked body too large", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n",
			[]string{fakebackend.RuleBodyTooLarge}, 413, []fakebackend.Option{fakebackend.WithMaxBody(10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, tc.opts...)
			c := dial(t, s)
			c.send(tc.raw)
			if tc.status == 0 {
				c.nc.(*net.TCPConn).CloseWrite()
				if b, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
					t.Fatalf("answer to an incomplete request: %q, %v", b, err)
				}
			} else {
				resp, body := c.response(strings.Fields(tc.raw)[0])
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
				}
				if tc.status == 200 {
					if e := echoOf(t, body); !slices.Equal(e.Violations, tc.rules) {
						t.Fatalf("echo violations %q, want %q", e.Violations, tc.rules)
					}
				} else if !resp.Close {
					t.Fatal("a refused request does not close the connection")
				}
			}
			reqs, err := s.WaitRequests(ctx(t), 1)
			if err != nil {
				t.Fatal(err)
			}
			r := reqs[0]
			if got := rules(r.Violations); !slices.Equal(got, tc.rules) {
				t.Fatalf("violations %q, want %q: %+v", got, tc.rules, r.Violations)
			}
			for _, v := range r.Violations {
				if v.Detail == "" || !strings.Contains(tc.raw, string(v.Bytes)) {
					t.Errorf("violation %s: detail %q, bytes %q not from the wire", v.Rule, v.Detail, v.Bytes)
				}
			}
			if st, _ := s.Stats(ctx(t)); st.Violations != len(tc.rules) {
				t.Errorf("Stats.Violations = %d, want %d", st.Violations, len(tc.rules))
			}
			if !bytes.HasPrefix([]byte(strings.TrimLeft(tc.raw, "\r\n")), r.RawHead) {
				t.Errorf("raw head %q is not what was sent", r.RawHead)
			}
		})
	}
}

// The parsed view holds what RFC 9112 lets a recipient repair, and the raw
// head the truth.
func TestRepairsInTheParsedView(t *testing.T) {
	s := start(t)
	raw := "GET / HTTP/1.1\r\nHost: h\r\nA: x\rb\r\nB: one\r\n\t two \r\nC : c\r\n\r\n"
	dial(t, s).do(raw)
	reqs, _ := s.WaitRequests(ctx(t), 1)
	want := []fakebackend.Field{{"Host", "h"}, {"A", "x b"}, {"B", "one two"}, {"C", "c"}}
	if !slices.Equal(reqs[0].Header, want) || string(reqs[0].RawHead) != raw {
		t.Fatalf("header %q raw %q", reqs[0].Header, reqs[0].RawHead)
	}
}

// Requests pipelined in one write are read one by one.
func TestPipelinedRequests(t *testing.T) {
	s := start(t)
	c := dial(t, s)
	c.send("POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nabGET /2 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"PUT /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n")
	for i, target := range []string{"/1", "/2", "/3"} {
		resp, body := c.response("GET")
		if e := echoOf(t, body); resp.StatusCode != 200 || e.Target != target || e.Seq != i+1 || len(e.Violations) != 0 {
			t.Fatalf("response %d: %+v", i, e)
		}
	}
}

// Bodies larger than every buffer on the way arrive whole, in both framings.
func TestLargeBodies(t *testing.T) {
	s := start(t)
	body := strings.Repeat("0123456789abcdef", 1<<14) // 256 KiB
	chunked := fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 100, body[:100], len(body)-100, body[100:])
	c := dial(t, s)
	for _, raw := range []string{
		fmt.Sprintf("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
		"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
	} {
		go c.nc.Write([]byte(raw)) // the echo comes back while we still write
		_, got := c.response("POST")
		if e := echoOf(t, got); e.Body != body || len(e.Violations) != 0 {
			t.Fatalf("echoed body of %d bytes, violations %q", len(e.Body), e.Violations)
		}
	}
	reqs, _ := s.WaitRequests(ctx(t), 2)
	if string(reqs[0].Body) != body || string(reqs[1].Body) != body || string(reqs[1].RawBody) != chunked {
		t.Fatal("recorded bodies differ from what was sent")
	}
}
