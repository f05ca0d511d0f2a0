package fakebackend

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// Echo is the body of the default answer (Content-Type: application/json):
// what the backend received, as it received it, so that a test looking only
// at the client side still sees what the proxy forwarded.
//
//	{"backend":"a","conn":1,"seq":1,"method":"POST","target":"/x?y=1",
//	 "proto":"HTTP/1.1",
//	 "header":[{"name":"Host","value":"127.0.0.1:1234"}, ...],
//	 "body":"hello","body_base64":"...","trailers":[...],
//	 "violations":["bare-lf", ...]}
//
// header and trailers keep wire order, original case and duplicates. body is
// the decoded body (chunked framing removed) as a string; when it is not
// valid UTF-8, its invalid bytes read as U+FFFD there and body_base64 holds
// the exact bytes. trailers and violations (rule ids, see Rule*) are left
// out when empty. The body ends with a newline.
type Echo struct {
	Backend    string   `json:"backend"`
	Conn       uint64   `json:"conn"`
	Seq        int      `json:"seq"`
	Method     string   `json:"method"`
	Target     string   `json:"target"`
	Proto      string   `json:"proto"`
	Header     []Field  `json:"header"`
	Body       string   `json:"body"`
	BodyBase64 string   `json:"body_base64,omitempty"`
	Trailers   []Field  `json:"trailers,omitempty"`
	Violations []string `json:"violations,omitempty"`
}

// Values returns the values of every header field named name
// (case-insensitive), in wire order.
func (e Echo) Values(name string) []string { return values(e.Header, name) }

// Get returns the first value of the header field named name, or "".
func (e Echo) Get(name string) string {
	if v := e.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Has reports whether a header field named name arrived at all.
func (e Echo) Has(name string) bool { return len(e.Values(name)) > 0 }

// BodyBytes returns the exact body bytes.
func (e Echo) BodyBytes() ([]byte, error) {
	if e.BodyBase64 == "" {
		return []byte(e.Body), nil
	}
	return base64.StdEncoding.DecodeString(e.BodyBase64)
}

// appendEcho appends the Echo of r to dst. It is written by hand, not with
// encoding/json, because it runs once per request on the serving path.
func appendEcho(dst []byte, r *Request) []byte {
	dst = append(dst, `{"backend":`...)
	dst = appendJSONString(dst, r.Backend)
	dst = append(dst, `,"conn":`...)
	dst = strconv.AppendUint(dst, r.Conn, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, int64(r.Seq), 10)
	dst = append(dst, `,"method":`...)
	dst = appendJSONString(dst, r.Method)
	dst = append(dst, `,"target":`...)
	dst = appendJSONString(dst, r.Target)
	dst = append(dst, `,"proto":`...)
	dst = appendJSONString(dst, r.Proto)
	dst = append(dst, `,"header":`...)
	dst = appendFields(dst, r.Header)
	dst = append(dst, `,"body":`...)
	dst = appendJSONString(dst, r.Body)
	if !utf8.Valid(r.Body) {
		dst = append(dst, `,"body_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Body)
		dst = append(dst, '"')
	}
	if len(r.Trailers) > 0 {
		dst = append(dst, `,"trailers":`...)
		dst = appendFields(dst, r.Trailers)
	}
	if len(r.Violations) > 0 {
		dst = append(dst, `,"violations":[`...)
		for i, v := range r.Violations {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, v.Rule)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}\n"...)
}

func appendFields(dst []byte, fs []Field) []byte {
	dst = append(dst, '[')
	for i, f := range fs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendJSONString(dst, f.Name)
		dst = append(dst, `,"value":`...)
		dst = appendJSONString(dst, f.Value)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does
// without HTML escaping: invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029
// are escaped so that the output is also valid JavaScript.
func appendJSONString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch v := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(v[i:])
		case []byte:
			r, size = utf8.DecodeRune(v[i:])
		}
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
