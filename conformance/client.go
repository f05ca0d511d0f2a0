package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
)

// Exchange is one request sent to the proxy on a fresh connection and what
// came back. Err is set when no complete response arrived (the connection
// was refused, reset, closed early or timed out); Response and Body then
// hold whatever was parsed before the failure.
type Exchange struct {
	// Request is the exact bytes written.
	Request []byte
	// Informational are the 1xx responses that preceded the final one.
	Informational []*http.Response
	// Response is the final response (its Body already read into Body).
	Response *http.Response
	Body     []byte
	// Raw is every byte read from the connection, as it arrived.
	Raw []byte
	Err error
	// Took is the time from dialling to the end of the response.
	Took time.Duration
}

// Status is the final response's status code, or 0 when there was none.
func (x *Exchange) Status() int {
	if x.Response == nil {
		return 0
	}
	return x.Response.StatusCode
}

// Header returns the final response's values of the field name, in order.
func (x *Exchange) Header(name string) []string {
	if x.Response == nil {
		return nil
	}
	return x.Response.Header.Values(name)
}

// Send writes raw, byte for byte, on a fresh connection to the proxy and
// reads one response (after any 1xx), bounded by ResponseTimeout. It never
// fails the spec: errors are in the Exchange, for specs about broken
// responses. The exchange becomes part of the spec's evidence.
func (e *Env) Send(raw string) *Exchange {
	ginkgo.GinkgoHelper()
	e.mustBeStarted()
	x := exchange(e.Proxy, []byte(raw), e.Within(e.topo.ConnectTimeout), e.ResponseTimeout())
	e.mu.Lock()
	e.exchanges = append(e.exchanges, x)
	e.mu.Unlock()
	return x
}

// Get sends "GET target HTTP/1.1" with Host set to the proxy's address and
// the given header lines ("Name: value", sent as written, in order). It
// fails the spec when no complete response arrives.
func (e *Env) Get(target string, header ...string) *Exchange {
	ginkgo.GinkgoHelper()
	return e.Do(http.MethodGet, target, header, "")
}

// Do sends method and target with the given header lines and body; a
// non-empty body gets a Content-Length unless the header lines frame it
// themselves. It fails the spec when no complete response arrives.
func (e *Env) Do(method, target string, header []string, body string) *Exchange {
	ginkgo.GinkgoHelper()
	e.mustBeStarted()
	x := e.Send(RawRequest(method, target, e.Proxy, header, body))
	if x.Err != nil {
		ginkgo.Fail(fmt.Sprintf("%s %s through the proxy: no complete response: %v", method, target, x.Err))
	}
	return x
}

// RawRequest builds an HTTP/1.1 request: request line, Host, header lines as
// given, Content-Length for a non-empty body unless header has a
// Content-Length or Transfer-Encoding line, then the body.
func RawRequest(method, target, host string, header []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
	framed := false
	for _, h := range header {
		name, _, _ := strings.Cut(h, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		framed = framed || name == "content-length" || name == "transfer-encoding"
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	if body != "" && !framed {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

func (e *Env) mustBeStarted() {
	ginkgo.GinkgoHelper()
	if !e.started || e.inst == nil {
		ginkgo.Fail("conformance: call e.Start(TopologyRequest{...}) before sending requests")
	}
}

// exchange does the work of Send.
func exchange(addr string, raw []byte, dialTimeout, timeout time.Duration) *Exchange {
	x := &Exchange{Request: raw}
	start := time.Now()
	defer func() { x.Took = time.Since(start) }()

	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		x.Err = fmt.Errorf("dial %s: %w", addr, err)
		return x
	}
	defer conn.Close()
	if err := conn.SetDeadline(start.Add(timeout)); err != nil {
		x.Err = fmt.Errorf("set deadline: %w", err)
		return x
	}
	// Write in a goroutine: a proxy may answer (and close) before reading a
	// whole request, and the response is what the spec is about.
	wrote := make(chan error, 1)
	go func() {
		_, err := conn.Write(raw)
		wrote <- err
	}()

	var got bytes.Buffer
	br := bufio.NewReader(io.TeeReader(conn, &got))
	defer func() { x.Raw = got.Bytes() }()
	req := &http.Request{Method: requestMethod(raw)}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			x.Err = fmt.Errorf("reading response: %w%s", err, writeErr(wrote))
			return x
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			x.Informational = append(x.Informational, resp)
			continue
		}
		x.Response = resp
		x.Body, err = io.ReadAll(resp.Body)
		if err != nil {
			x.Err = fmt.Errorf("reading response body (%d bytes read): %w", len(x.Body), err)
		}
		return x
	}
}

// writeErr adds the write error, if the write already ended with one, to
// explain a failed read.
func writeErr(wrote <-chan error) string {
	select {
	case err := <-wrote:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Sprintf(" (writing the request: %v)", err)
		}
	default:
	}
	return ""
}

// requestMethod is the method of a raw request, so that the response to a
// HEAD is read without a body.
func requestMethod(raw []byte) string {
	m, _, ok := bytes.Cut(raw, []byte(" "))
	if !ok {
		return http.MethodGet
	}
	return string(m)
}
