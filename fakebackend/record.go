package fakebackend

import "time"

// Field is one header or trailer line as it arrived: original case, original
// order, duplicates kept. Value has leading and trailing whitespace removed
// (RFC 9112 §5: OWS around a field value is not part of it).
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Request is one request as a backend received it.
type Request struct {
	Backend string    `json:"backend"`
	Index   int       `json:"index"` // 0-based, per backend, in arrival order
	Conn    uint64    `json:"conn"`  // connection id, 1-based, per backend
	Seq     int       `json:"seq"`   // 1-based request number on that connection
	At      time.Time `json:"at"`    // when the first byte of the request line arrived
	Remote  string    `json:"remote"`

	// RawHead is the request line and header section, through the empty line.
	RawHead []byte `json:"raw_head"`
	// RawBody is the message body as it was framed on the wire (chunk sizes,
	// extensions and trailers included for a chunked body).
	RawBody []byte `json:"raw_body"`

	Method   string  `json:"method"`
	Target   string  `json:"target"`
	Proto    string  `json:"proto"`  // e.g. "HTTP/1.1"
	Header   []Field `json:"header"` // wire order
	Body     []byte  `json:"body"`   // decoded (chunked framing removed)
	Trailers []Field `json:"trailers,omitempty"`

	// Violations are the RFC 9112 rules this request broke.
	Violations []Violation `json:"violations,omitempty"`
}

// Values returns the values of every field named name (case-insensitive), in
// wire order.
func (r Request) Values(name string) []string { return values(r.Header, name) }

// Get returns the first value of the field named name, or "".
func (r Request) Get(name string) string {
	if v := r.Values(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Has reports whether a field named name arrived at all.
func (r Request) Has(name string) bool { return len(r.Values(name)) > 0 }

// Violation is one RFC 9112 rule broken by what a backend received.
type Violation struct {
	Rule   string `json:"rule"`   // stable identifier, e.g. "duplicate-content-length"
	Detail string `json:"detail"` // what was wrong, for a human
	Bytes  []byte `json:"bytes"`  // the offending bytes
}

// Conn is one connection a backend accepted.
type Conn struct {
	ID       uint64    `json:"id"`
	Remote   string    `json:"remote"`
	Opened   time.Time `json:"opened"`
	Requests int       `json:"requests"` // complete requests read on it
	// Closed is set once the connection is over; ClosedBy says who ended it:
	// "peer" (the proxy closed or reset it), "backend" (the backend closed it,
	// because its behaviour said so or it sent Connection: close), or
	// "shutdown" (the backend was closed or reset).
	Closed   bool   `json:"closed"`
	ClosedBy string `json:"closed_by,omitempty"`
}

// Stats are a backend's counters since the last Reset.
type Stats struct {
	// Requests counts every request recorded, incomplete ones included
	// (Conn.Requests counts complete ones only).
	Requests    int `json:"requests"`
	Connections int `json:"connections"`
	// OneShotConns counts connections that carried exactly one request and
	// were then closed by the proxy (or by the backend because the request
	// said Connection: close).
	OneShotConns int `json:"one_shot_conns"`
	// Violations counts the violations of all requests recorded.
	Violations int `json:"violations"`
}

func values(fs []Field, name string) []string {
	var out []string
	for _, f := range fs {
		if equalFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// equalFold is ASCII-only case folding: field names are tokens (RFC 9110
// §5.1), and Unicode folding would let "K" (Kelvin sign) match "k".
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
