package fakebackend

import (
	"net/http"
	"strconv"
)

// outcome is what happens to a connection after a response.
type outcome int

const (
	keepOpen  outcome = iota // read the next request
	closeConn                // close gracefully (FIN)
	resetConn                // abort (RST)
	hangConn                 // stay silent until the peer goes away
	failed                   // the peer went away or the backend shut down
)

// respond answers one request as b says and tells what to do with the
// connection next.
func (c *conn) respond(b *Behaviour, m *message, req *Request) outcome {
	switch b.Fault {
	case ResetBeforeRequest:
		// Only reached when the behaviour was taken by a request on a
		// connection accepted earlier: reset as soon as possible.
		return resetConn
	case Hang:
		return hangConn
	}
	if !c.pause(b.Delay.Std()) {
		return failed
	}
	switch b.Fault {
	case CloseBeforeResponse:
		return closeConn
	case ResetBeforeResponse:
		return resetConn
	}
	closing := b.Close || m.close || b.Framing == "close"
	if b.Raw != nil {
		c.bw.WriteString(*b.Raw)
		return c.finish(closing)
	}

	for _, inf := range b.Informational {
		c.writeStatus(inf.Status, "")
		c.writeFields(inf.Header)
		c.bw.WriteString("\r\n")
	}
	if len(b.Informational) > 0 && c.bw.Flush() != nil {
		return failed
	}

	status := b.Status
	if status == 0 {
		status = http.StatusOK
	}
	// RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content.
	bodyless := status < 200 || status == http.StatusNoContent || status == http.StatusNotModified
	var body []byte
	echo := false
	switch {
	case b.NoBody || bodyless:
	case b.Body != nil:
		body = []byte(*b.Body)
	default:
		c.buf = appendEcho(c.buf[:0], req)
		body, echo = c.buf, true
	}
	chunked := b.Framing == "chunked"

	c.writeStatus(status, b.Reason)
	c.bw.WriteString("X-Proxyspec-Backend: ")
	c.bw.WriteString(c.srv.name)
	c.bw.WriteString("\r\nCache-Control: no-store\r\n")
	if echo {
		c.bw.WriteString("Content-Type: application/json\r\n")
	}
	if !bodyless {
		switch b.Framing {
		case "", "length":
			c.bw.WriteString("Content-Length: ")
			c.bw.Write(strconv.AppendInt(c.bw.AvailableBuffer(), int64(len(body)), 10))
			c.bw.WriteString("\r\n")
		case "chunked":
			c.bw.WriteString("Transfer-Encoding: chunked\r\n")
		}
	}
	switch {
	case closing:
		c.bw.WriteString("Connection: close\r\n")
	case m.http10():
		c.bw.WriteString("Connection: keep-alive\r\n")
	}
	c.writeFields(b.Header)
	c.bw.WriteString("\r\n")

	limit := -1
	switch b.Fault {
	case CloseAfterHeaders:
		return c.finishWith(closeConn)
	case ResetAfterHeaders:
		return c.finishWith(resetConn)
	case CloseMidBody, ResetMidBody, HangMidBody:
		limit = len(body) / 2
	}
	if bodyless || m.method == "HEAD" {
		// RFC 9110 §9.3.2: a HEAD response has the fields of a GET
		// response, and no content.
		body, chunked, limit = nil, false, min(limit, 0)
	}
	if !c.writeBody(body, chunked, b.ChunkSize, b.SlowBody, limit, b.Trailers) {
		return failed
	}
	switch b.Fault {
	case CloseMidBody:
		return c.finishWith(closeConn)
	case ResetMidBody:
		return c.finishWith(resetConn)
	case HangMidBody:
		return c.finishWith(hangConn)
	}
	return c.finish(closing)
}

// finish flushes the response and says whether to close.
func (c *conn) finish(closing bool) outcome {
	if closing {
		return c.finishWith(closeConn)
	}
	return c.finishWith(keepOpen)
}

func (c *conn) finishWith(o outcome) outcome {
	if c.bw.Flush() != nil {
		return failed
	}
	return o
}

// writeBody writes body, chunked or as is, paced by slow, stopping after
// limit bytes of body when limit >= 0 (a truncated body never gets its last
// chunk). It reports false when a write failed or the backend shut down.
func (c *conn) writeBody(body []byte, chunked bool, chunkSize int, slow *Slow, limit int, trailers []Field) bool {
	step := len(body)
	if slow != nil {
		step = slow.Bytes
	}
	if chunkSize <= 0 {
		chunkSize = step
	}
	sent, pause := 0, false
	wait := func() bool {
		if !pause {
			return true
		}
		pause = false
		return c.bw.Flush() == nil && c.pause(slow.Interval.Std())
	}
	for sent < len(body) {
		n := min(len(body)-sent, chunkSize)
		if limit >= 0 && sent >= limit {
			break
		}
		if !wait() {
			return false
		}
		if chunked {
			c.bw.Write(strconv.AppendInt(c.bw.AvailableBuffer(), int64(n), 16))
			c.bw.WriteString("\r\n")
		}
		for end := sent + n; sent < end; {
			if limit >= 0 && sent >= limit {
				return c.bw.Flush() == nil
			}
			if !wait() {
				return false
			}
			k := min(end-sent, step-sent%step)
			if limit >= 0 {
				k = min(k, limit-sent)
			}
			c.bw.Write(body[sent : sent+k])
			sent += k
			pause = slow != nil && sent%step == 0 && sent < len(body)
		}
		if chunked {
			c.bw.WriteString("\r\n")
		}
	}
	if limit >= 0 {
		return c.bw.Flush() == nil
	}
	if chunked {
		c.bw.WriteString("0\r\n")
		c.writeFields(trailers)
		c.bw.WriteString("\r\n")
	}
	return true
}

func (c *conn) writeStatus(status int, reason string) {
	if reason == "" {
		reason = http.StatusText(status)
	}
	c.bw.WriteString("HTTP/1.1 ")
	c.bw.Write(strconv.AppendInt(c.bw.AvailableBuffer(), int64(status), 10))
	c.bw.WriteString(" ")
	c.bw.WriteString(reason)
	c.bw.WriteString("\r\n")
}

func (c *conn) writeFields(fs []Field) {
	for _, f := range fs {
		c.bw.WriteString(f.Name)
		c.bw.WriteString(": ")
		c.bw.WriteString(f.Value)
		c.bw.WriteString("\r\n")
	}
}

// refuse answers a request the backend cannot or will not delimit with
// m.status, naming the violations, and asks for the connection to close.
func (c *conn) refuse(m *message) {
	var body []byte
	for _, v := range m.violations {
		body = append(body, v.Rule...)
		body = append(body, ": "...)
		body = append(body, v.Detail...)
		body = append(body, '\n')
	}
	c.writeStatus(m.status, "")
	c.bw.WriteString("X-Proxyspec-Backend: ")
	c.bw.WriteString(c.srv.name)
	c.bw.WriteString("\r\nCache-Control: no-store\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	c.bw.WriteString(strconv.Itoa(len(body)))
	c.bw.WriteString("\r\nConnection: close\r\n\r\n")
	c.bw.Write(body)
	c.bw.Flush()
}
