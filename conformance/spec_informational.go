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
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func init() {
	addGroup("informational", func(s *Suite) {
		both := []Profile{ProfileSeed, ProfileRFC9110}

		s.It(Meta{
			ID:       "informational/100-continue",
			Title:    "with Expect: 100-continue, delivers the body and the backend's final response, and relays the backend's 100",
			Level:    MUST,
			Source:   "RFC 9110 §10.1.1: a client may wait for 100 (Continue) before sending content; §15.2: a proxy must forward the 1xx responses it did not itself ask for",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			e.SetDefault("a", fakebackend.Behaviour{Continue: true, Body: fakebackend.Text("accepted")})
			const body = "the content the client held back"

			c := e.sendExpectingContinue("/informational/100-continue", body)

			Expect(c.x.Err).NotTo(HaveOccurred(), "no complete final response")
			Expect(c.x.Status()).To(Equal(http.StatusOK), "the final status the client got")
			Expect(string(c.x.Body)).To(Equal("accepted"), "the final response's content: the backend's")
			for _, r := range c.x.Informational {
				Expect(r.StatusCode).To(Equal(http.StatusContinue), "an interim response the client got before the final one: no one asked for anything but 100")
			}
			got := e.ReceivedBy("a")
			Expect(targets(got)).To(HaveLen(1), "requests backend a received")
			expectForwardedBody(got[0], body)
			if strings.EqualFold(got[0].Get("Expect"), "100-continue") {
				Expect(c.x.Informational).NotTo(BeEmpty(), "the proxy passed the expectation on, the backend answered 100 (Continue), and the client never got it (RFC 9110 §15.2)")
			}
		})

		s.It(Meta{
			ID:       "informational/100-continue-prompt",
			Title:    "answers Expect: 100-continue with a 100 (its own or the backend's) without making the client wait",
			Level:    SHOULD,
			Source:   "RFC 9110 §10.1.1: a server receiving 100-continue sends an immediate 100 or final status; a client should not have to wait an indefinite period",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			e.SetDefault("a", fakebackend.Behaviour{Continue: true, Body: fakebackend.Text("accepted")})

			c := e.sendExpectingContinue("/informational/100-continue-prompt", "prompt")

			Expect(c.prompt).To(BeTrue(), "no 100 (Continue) or final response within %s of a request head with Expect: 100-continue; the client sent its body unasked", c.waited)
			Expect(c.x.Err).NotTo(HaveOccurred(), "no complete final response")
			Expect(c.x.Status()).To(Equal(http.StatusOK), "the final status the client got")
		})

		s.It(Meta{
			ID:       "informational/103-forwarded",
			Title:    "relays a backend's 103 Early Hints with its Link field, then the final response",
			Level:    MUST,
			Source:   "RFC 9110 §15.2: a proxy must forward 1xx responses unless it asked for them itself; RFC 8297: 103 Early Hints",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			const link = "</style.css>; rel=preload; as=style"
			e.SetDefault("a", fakebackend.Behaviour{
				Informational: []fakebackend.Informational{{Status: http.StatusEarlyHints, Header: []fakebackend.Field{{Name: "Link", Value: link}}}},
				Body:          fakebackend.Text("final"),
			})

			x := e.Get("/informational/103-forwarded")

			Expect(statuses(x.Informational)).To(HaveLen(1), "interim responses the client got before the final one")
			Expect(x.Informational[0].StatusCode).To(Equal(http.StatusEarlyHints), "the interim response's status")
			Expect(x.Informational[0].Header.Values("Link")).To(ConsistOf(link), "the 103's Link field")
			Expect(x.Status()).To(Equal(http.StatusOK), "the final status the client got")
			Expect(string(x.Body)).To(Equal("final"), "the final response's content")
		})

		s.It(Meta{
			ID:       "informational/not-final",
			Title:    "never takes a 1xx for the final response: the client gets the backend's final status and content, and no 1xx carries framing",
			Level:    MUST,
			Source:   "RFC 9110 §15.2: a 1xx is interim, ends with its header section and precedes the final response; RFC 9112 §6.1, RFC 9110 §8.6: no Transfer-Encoding or Content-Length in a 1xx",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			e.SetDefault("a", fakebackend.Behaviour{
				Informational: []fakebackend.Informational{
					{Status: http.StatusProcessing, Header: []fakebackend.Field{{Name: "X-Interim", Value: "1"}}},
					{Status: http.StatusEarlyHints, Header: []fakebackend.Field{{Name: "Link", Value: "</a.js>; rel=preload; as=script"}}},
				},
				Status: http.StatusCreated,
				Header: []fakebackend.Field{{Name: "X-Final", Value: "yes"}},
				Body:   fakebackend.Text("created"),
			})

			st := e.sendToClose(RawRequest(http.MethodPost, "/informational/not-final", e.Proxy, []string{"Connection: close"}, "payload"))

			expectOneResponse(st, http.StatusCreated, "created")
			Expect(st.finals[0].Header.Values("X-Final")).To(ConsistOf("yes"), "a field of the backend's final response")
			for i, h := range st.heads {
				if status := statusAt(st.raw[st.starts[i]:]); status >= 100 && status < 200 {
					Expect(fieldValues(h, "Content-Length")).To(BeEmpty(), "Content-Length in the %d interim response", status)
					Expect(fieldValues(h, "Transfer-Encoding")).To(BeEmpty(), "Transfer-Encoding in the %d interim response", status)
				}
			}
		})

		s.It(Meta{
			ID:       "informational/http10-client",
			Title:    "sends no 1xx to an HTTP/1.0 client, only the final response",
			Level:    MUST,
			Source:   "RFC 9110 §15.2: a server must not send a 1xx response to an HTTP/1.0 client",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			e.SetDefault("a", fakebackend.Behaviour{
				Informational: []fakebackend.Informational{{Status: http.StatusEarlyHints, Header: []fakebackend.Field{{Name: "Link", Value: "</style.css>; rel=preload"}}}},
				Body:          fakebackend.Text("final"),
			})

			st := e.sendToClose("GET /informational/http10-client HTTP/1.0\r\nHost: " + e.Proxy + "\r\n\r\n")

			Expect(st.x.Informational).To(BeEmpty(), "interim responses sent to an HTTP/1.0 client")
			expectOneResponse(st, http.StatusOK, "final")
		})
	})
}

// continued is an exchange in which the client held its body back until
// the proxy answered the request head, or until it gave up waiting.
type continued struct {
	x *Exchange
	// prompt says the proxy answered (a 1xx or a final response) before
	// the client gave up waiting and sent the body unasked.
	prompt bool
	waited time.Duration
}

// sendExpectingContinue sends a POST with Expect: 100-continue and holds
// its body back until a response arrives, as a client that waits for 100
// does. It waits the read timeout times the margin (what the proxy may take
// to hear from the backend), then sends the body anyway, as RFC 9110
// §10.1.1 allows. A final response before the body means the body is not
// sent at all. The exchange becomes part of the evidence.
func (e *Env) sendExpectingContinue(target, body string) *continued {
	ginkgo.GinkgoHelper()
	e.mustBeStarted()
	head := RawRequest(http.MethodPost, target, e.Proxy, []string{"Expect: 100-continue", fmt.Sprintf("Content-Length: %d", len(body))}, "")
	c := &continued{x: &Exchange{Request: []byte(head)}, waited: e.Within(e.ReadTimeout())}
	start := time.Now()
	defer func() {
		c.x.Took = time.Since(start)
		e.mu.Lock()
		e.exchanges = append(e.exchanges, c.x)
		e.mu.Unlock()
	}()

	conn, err := net.DialTimeout("tcp", e.Proxy, e.Within(e.ConnectTimeout()))
	if err != nil {
		c.x.Err = fmt.Errorf("dial %s: %w", e.Proxy, err)
		return c
	}
	defer conn.Close()
	var got bytes.Buffer
	defer func() { c.x.Raw = got.Bytes() }()
	br := bufio.NewReader(io.TeeReader(conn, &got))
	sendBody := func() error {
		c.x.Request = append(c.x.Request, body...)
		_, err := io.WriteString(conn, body)
		return err
	}
	if _, err := io.WriteString(conn, head); err != nil {
		c.x.Err = fmt.Errorf("writing the request head: %w", err)
		return c
	}

	conn.SetReadDeadline(time.Now().Add(c.waited))
	_, err = br.Peek(1)
	var ne net.Error
	switch {
	case err == nil:
		c.prompt = true
	case errors.As(err, &ne) && ne.Timeout():
		if err := sendBody(); err != nil {
			c.x.Err = fmt.Errorf("writing the body after waiting %s for 100 (Continue): %w", c.waited, err)
			return c
		}
	default:
		c.x.Err = fmt.Errorf("waiting for 100 (Continue): %w", err)
		return c
	}
	conn.SetReadDeadline(time.Now().Add(e.ResponseTimeout()))
	sent := !c.prompt
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodPost})
		if err != nil {
			c.x.Err = fmt.Errorf("reading response: %w", err)
			return c
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			c.x.Informational = append(c.x.Informational, resp)
			// Any interim response shows the proxy is listening; only a
			// 100 invites the body, but holding it back after a 103
			// would wait on a proxy that owes nothing more.
			if !sent {
				sent = true
				if err := sendBody(); err != nil {
					c.x.Err = fmt.Errorf("writing the body after 100 (Continue): %w", err)
					return c
				}
			}
			continue
		}
		c.x.Response = resp
		c.x.Body, err = io.ReadAll(resp.Body)
		if err != nil {
			c.x.Err = fmt.Errorf("reading response body (%d bytes read): %w", len(c.x.Body), err)
		}
		return c
	}
}
