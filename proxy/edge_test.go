package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// headOnly is a backend that reads a request's head and hangs up, before
// any body could have been sent: it never invites one with 100 Continue.
func headOnly(t *testing.T) (url string, heads <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan string, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			var head strings.Builder
			for {
				line, err := br.ReadString('\n')
				head.WriteString(line)
				if err != nil || line == "\r\n" {
					break
				}
			}
			ch <- head.String()
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String(), ch
}

// sendExpecting sends a request with Expect: 100-continue, sends the body
// only once invited, and returns the final status.
func sendExpecting(t *testing.T, addr, method, body string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, method+" /e HTTP/1.1\r\nHost: f\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: reading response: %v", method, err)
		}
		if res.StatusCode == http.StatusContinue {
			io.WriteString(c, body)
			continue
		}
		io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
}

// A PUT whose body never left the proxy (the backend hung up before asking
// for it) is still whole and may go to the next backend; a POST may not.
func TestFailoverWithUnsentBodyWaitingForContinue(t *testing.T) {
	first, heads := headOnly(t)
	second := startRaw(t, nil)
	p := newProxy(t, []string{first, second.url()}, WithStrategy(fixed(0)))
	front := hostOf(t, serve(t, p))

	if code := sendExpecting(t, front, http.MethodPut, "payload"); code != http.StatusOK {
		t.Fatalf("PUT: %d, want 200 from the second backend", code)
	}
	if h := <-heads; !strings.HasPrefix(h, "PUT /e ") || !strings.Contains(h, "Expect: 100-continue") {
		t.Errorf("first backend got head %q", h)
	}
	if s := second.next(t, time.Second); string(s.body) != "payload" {
		t.Errorf("second backend got body %q", s.body)
	}

	if code := sendExpecting(t, front, http.MethodPost, "order"); code != http.StatusBadGateway {
		t.Fatalf("POST: %d, want 502", code)
	}
	<-heads
	second.none(t)
}

func TestClientGoneStopsFailover(t *testing.T) {
	slow := startRaw(t, stall(""))
	other := startRaw(t, nil)
	p := newProxy(t, []string{slow.url(), other.url()}, WithStrategy(fixed(0)))
	done := make(chan struct{})
	front := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		p.ServeHTTP(w, r)
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front+"/", nil)
	go func() {
		slow.next(t, 5*time.Second)
		cancel()
	}()
	if _, err := client().Do(req); err == nil {
		t.Fatal("request succeeded after the client cancelled it")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("proxy handler still running after the client left")
	}
	other.none(t)
}

func TestSwitchingProtocolsFromBackendIsBadGateway(t *testing.T) {
	back := startRaw(t, func(c net.Conn, _ seen) {
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
	})
	p := newProxy(t, []string{back.url()})
	res, body := get(t, serve(t, p)+"/ws")
	checkBadGateway(t, res, body)
}

// A wrapper that answers by itself never touches a connection: for the
// proxy nothing was sent, and failover happens even for POST.
func TestWrapperErrorBeforeSendingFailsOver(t *testing.T) {
	calls := 0
	wrap := func(next http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			calls++
			if calls == 1 {
				return nil, io.ErrUnexpectedEOF
			}
			return next.RoundTrip(r)
		})
	}
	back := startRaw(t, nil)
	p := newProxy(t, []string{back.url(), back.url()}, WithRoundTripper(wrap))
	res, _ := do(t, httptestRequest(t, http.MethodPost, serve(t, p)+"/", strings.NewReader("x")))
	if res.StatusCode != http.StatusOK || calls != 2 {
		t.Fatalf("status %d after %d round trips, want 200 after 2", res.StatusCode, calls)
	}
	if s := back.next(t, time.Second); string(s.body) != "x" {
		t.Errorf("backend got body %q", s.body)
	}
}
