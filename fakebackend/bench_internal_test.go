package fakebackend

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// A request as a typical proxy forwards it.
const benchGet = "GET /api/v1/items?page=2&sort=name HTTP/1.1\r\n" +
	"Host: 127.0.0.1:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) bench\r\n" +
	"Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\nAccept-Language: en-GB,en;q=0.9\r\n" +
	"Cookie: session=0123456789abcdef; theme=dark\r\nVia: 1.1 rws\r\nX-Forwarded-For: 10.0.0.1\r\n" +
	"X-Request-Id: 5d0c2a3e-9b7c-4d8e-a1f2-3b4c5d6e7f80\r\nConnection: close\r\n\r\n"

var benchChunked = "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"400\r\n" + benchKiB + "\r\n400;ext=1\r\n" + benchKiB + "\r\n0\r\nX-Sum: 1\r\n\r\n"

var benchKiB = string(bytes.Repeat([]byte("0123456789abcdef"), 64))

func benchParse(b *testing.B, raw string) {
	r := bytes.NewReader([]byte(raw))
	br := bufio.NewReaderSize(r, 4<<10)
	p := parser{br: br, maxHead: 1 << 20, maxBody: 1 << 20}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset([]byte(raw))
		br.Reset(r)
		var m message
		if err := p.readHead(&m); err != nil {
			b.Fatal(err)
		}
		p.readBody(&m)
		if len(m.violations) != 0 || m.status != 0 {
			b.Fatalf("violations %+v", m.violations)
		}
	}
}

func BenchmarkParseGet(b *testing.B)     { benchParse(b, benchGet) }
func BenchmarkParseChunked(b *testing.B) { benchParse(b, benchChunked) }

// BenchmarkRecord appends to an ever longer history: the cost per request
// must stay flat (amortized append, no copy of what was recorded before).
func BenchmarkRecord(b *testing.B) {
	var r recorder
	id, epoch := r.open("127.0.0.1:1", time.Now())
	req := Request{Backend: "b", Conn: id, Method: "GET", Target: "/", Proto: "HTTP/1.1",
		Header: []Field{{"Host", "h"}}, RawHead: []byte(benchGet)}
	b.ReportAllocs()
	for b.Loop() {
		x := req
		r.add(epoch, &x, true)
	}
}

func BenchmarkEcho(b *testing.B) {
	br := bufio.NewReader(bytes.NewReader([]byte(benchGet)))
	p := parser{br: br, maxHead: 1 << 20, maxBody: 1 << 20}
	var m message
	p.readHead(&m)
	req := &Request{Backend: "b", Conn: 1, Seq: 1, Method: m.method, Target: m.target, Proto: m.proto, Header: m.header}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEcho(buf[:0], req)
	}
	b.SetBytes(int64(len(buf)))
}
