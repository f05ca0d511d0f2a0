package fakebackend_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// patience bounds every wait for something that is expected to happen
// promptly; it only matters when a test is failing.
const patience = 5 * time.Second

func start(t *testing.T, opts ...fakebackend.Option) *fakebackend.Server {
	t.Helper()
	s, err := fakebackend.Start("b1", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return c
}

// client is a plain TCP client that writes hand-made bytes and reads
// responses with net/http's parser.
type client struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, s *fakebackend.Server) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr(), patience)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(patience))
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *client) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, raw); err != nil {
		c.t.Fatal(err)
	}
}

// response reads one response to a request with method method.
func (c *client) response(method string) (*http.Response, []byte) {
	c.t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("read response body: %v", err)
	}
	return resp, body
}

// do sends raw and reads the response.
func (c *client) do(raw string) (*http.Response, []byte) {
	c.t.Helper()
	c.send(raw)
	method, _, _ := strings.Cut(raw, " ")
	return c.response(method)
}

func echoOf(t *testing.T, body []byte) fakebackend.Echo {
	t.Helper()
	var e fakebackend.Echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("echo %q: %v", body, err)
	}
	return e
}

func rules(vs []fakebackend.Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return out
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return c, cancel
}
