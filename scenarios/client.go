package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// How an exchange with the proxy ended.
const (
	EndComplete    = "complete"    // a complete final response
	EndClosed      = "closed"      // the proxy closed the connection before the response was complete
	EndReset       = "reset"       // the proxy reset the connection before the response was complete
	EndTimeout     = "timeout"     // nothing more arrived before the step's deadline
	EndMalformed   = "malformed"   // what arrived is not an HTTP/1.1 response
	EndUnreachable = "unreachable" // the proxy could not be connected to
	EndError       = "error"       // any other I/O error
)

// Response is what the client got from the proxy for one request, read off
// the wire: the status line and header fields exactly as sent, the decoded
// body, and how the exchange ended.
type Response struct {
	Proto  string              `json:"proto,omitempty"`
	Status int                 `json:"status,omitempty"` // 0 when no final status line arrived
	Reason string              `json:"reason,omitempty"`
	Header []fakebackend.Field `json:"header,omitempty"` // wire order, duplicates kept
	// Informational holds the status codes of 1xx responses before the final one.
	Informational []int         `json:"informational,omitempty"`
	Body          []byte        `json:"body,omitempty"`
	Ended         string        `json:"ended"`         // one of the End constants
	Detail        string        `json:"detail"`        // how it ended, for a human
	Raw           []byte        `json:"raw,omitempty"` // every byte read, up to rawCap
	Elapsed       time.Duration `json:"elapsed"`
}

// Complete reports whether a complete final response arrived.
func (r *Response) Complete() bool { return r.Ended == EndComplete }

// Aborted reports whether the proxy ended the connection, by a close or a
// reset, without a complete response. A response that never came within the
// deadline is not aborted: the proxy is still holding the connection.
func (r *Response) Aborted() bool { return r.Ended == EndClosed || r.Ended == EndReset }

// Values returns every value of the field named name (case-insensitive).
func (r *Response) Values(name string) []string { return fieldValues(r.Header, name) }

func (r *Response) String() string {
	switch {
	case r.Complete():
		return fmt.Sprintf("a complete %d response", r.Status)
	case r.Status != 0:
		return fmt.Sprintf("an incomplete %d response (%s)", r.Status, r.Detail)
	default:
		return fmt.Sprintf("no response (%s)", r.Detail)
	}
}

const (
	rawCap  = 1 << 20 // evidence kept per response
	headCap = 1 << 20 // longest response head accepted
)

// DialFunc opens a connection to the proxy.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// exchange writes req on a fresh connection to addr and reads one response.
// It is deliberately not net/http's client: the request goes out byte for
// byte as written, and the response is recorded as it arrived, including
// how the connection ended.
func exchange(ctx context.Context, dial DialFunc, addr string, req []byte, method string, timeout time.Duration) *Response {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := &Response{}
	defer func() { r.Elapsed = time.Since(start) }()

	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		r.Ended, r.Detail = EndUnreachable, fmt.Sprintf("cannot connect to the proxy at %s: %v", addr, err)
		return r
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	// A cancelled parent context ends the exchange at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	// Write and read at the same time: a proxy may answer (or give up)
	// before it has read the whole request.
	written := make(chan struct{})
	go func() {
		defer close(written)
		conn.Write(req)
	}()
	tap := &tap{r: conn}
	readResponse(bufio.NewReader(tap), method, r, timeout)
	r.Raw = tap.buf
	conn.SetDeadline(time.Now())
	<-written
	return r
}

// tap keeps a copy of what is read through it, up to rawCap.
type tap struct {
	r   io.Reader
	buf []byte
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if room := rawCap - len(t.buf); room > 0 {
		t.buf = append(t.buf, p[:min(n, room)]...)
	}
	return n, err
}

func readResponse(br *bufio.Reader, method string, r *Response, timeout time.Duration) {
	for {
		head, err := readHead(br)
		if err != nil {
			r.end(err, "before a complete status line and header section", timeout)
			return
		}
		proto, code, reason, fields, err := parseHead(head)
		if err != nil {
			r.Ended, r.Detail = EndMalformed, err.Error()
			return
		}
		// Interim responses precede the final one (RFC 9110 §15.2); 101
		// is final for this exchange.
		if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
			r.Informational = append(r.Informational, code)
			continue
		}
		r.Proto, r.Status, r.Reason, r.Header = proto, code, reason, fields
		// net/http knows every framing rule of RFC 9112 §6.3; hand it the
		// head again and let it delimit the body.
		hr, err := http.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(head), br)), &http.Request{Method: method})
		if err != nil {
			r.Ended, r.Detail = EndMalformed, fmt.Sprintf("unreadable response head: %v", err)
			return
		}
		body, err := io.ReadAll(hr.Body)
		r.Body = body
		if err != nil {
			r.end(err, fmt.Sprintf("after %d body bytes", len(body)), timeout)
			return
		}
		r.Ended, r.Detail = EndComplete, "complete"
		return
	}
}

func (r *Response) end(err error, when string, timeout time.Duration) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		r.Ended, r.Detail = EndReset, "connection reset "+when
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		r.Ended, r.Detail = EndClosed, "connection closed "+when
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		r.Ended, r.Detail = EndTimeout, fmt.Sprintf("nothing more within %v, %s", timeout, when)
	case errors.Is(err, errHeadTooLong):
		r.Ended, r.Detail = EndMalformed, err.Error()
	default:
		r.Ended, r.Detail = EndError, fmt.Sprintf("%v %s", err, when)
	}
}

var errHeadTooLong = fmt.Errorf("response head longer than %d bytes", headCap)

// readHead reads a status line and header section through the empty line.
// A bare LF ends lines too (RFC 9112 §2.2 lets a recipient accept it).
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err == bufio.ErrBufferFull {
			if len(head) > headCap {
				return head, errHeadTooLong
			}
			continue
		}
		if err != nil {
			if err == io.EOF && len(head) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return head, err
		}
		if len(head) > headCap {
			return head, errHeadTooLong
		}
		if l := string(line); (l == "\r\n" || l == "\n") && len(head) > len(line) {
			return head, nil
		}
	}
}

func parseHead(head []byte) (proto string, code int, reason string, fields []fakebackend.Field, err error) {
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\n")
	status := strings.TrimSuffix(lines[0], "\r")
	proto, rest, ok := strings.Cut(status, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/") {
		return "", 0, "", nil, fmt.Errorf("bad status line %q", status)
	}
	codeText, reason, _ := strings.Cut(rest, " ")
	code, err = strconv.Atoi(codeText)
	if err != nil || len(codeText) != 3 {
		return "", 0, "", nil, fmt.Errorf("bad status code in status line %q", status)
	}
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(l, "\r")
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return "", 0, "", nil, fmt.Errorf("bad header line %q", l)
		}
		fields = append(fields, fakebackend.Field{Name: name, Value: strings.Trim(value, " \t")})
	}
	return proto, code, reason, fields, nil
}

func fieldValues(fs []fakebackend.Field, name string) []string {
	var out []string
	for _, f := range fs {
		if asciiEqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// asciiEqualFold compares field names, which are tokens (RFC 9110 §5.1):
// Unicode folding would let "K" (Kelvin sign) match "k".
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
