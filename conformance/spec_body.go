package conformance

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// largeBody is the size of the bodies that must cross the proxy intact:
// well past any buffer a proxy holds in memory (32 KiB to 1 MiB in the
// proxies we know), so that streaming and its boundaries are exercised.
const largeBody = 8 << 20

func init() {
	addGroup("body", func(s *Suite) {
		both := []Profile{ProfileSeed, ProfileRFC9110}

		s.It(Meta{
			ID:       "body/request/empty",
			Title:    "forwards a POST with Content-Length: 0 with an empty body",
			Level:    MUST,
			Source:   "RFC 9112 §6.3: a Content-Length of 0 means no content; RFC 9110 §8.6",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Do(http.MethodPost, "/body/request/empty", []string{"Content-Length: 0"}, "")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(targets(got)).To(HaveLen(1), "requests backend a received")
			Expect(got[0].Method).To(Equal(http.MethodPost))
			expectForwardedBody(got[0], "")
		})

		s.It(Meta{
			ID:       "body/request/none",
			Title:    "forwards a GET without a body without Content-Length or Transfer-Encoding",
			Level:    SHOULD,
			Source:   "RFC 9110 §8.6: a user agent should not send Content-Length when there is no content and the method anticipates none; §9.3.1: a client should not send content in a GET",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})

			x := e.Get("/body/request/none")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(targets(got)).To(HaveLen(1), "requests backend a received")
			Expect(got[0].Values("Content-Length")).To(BeEmpty(), "Content-Length on a GET the client sent without a body")
			Expect(got[0].Values("Transfer-Encoding")).To(BeEmpty(), "Transfer-Encoding on a GET the client sent without a body")
			Expect(got[0].Body).To(BeEmpty(), "content the backend got")
		})

		s.It(Meta{
			ID:       "body/request/large",
			Title:    "forwards an 8 MiB request body byte for byte",
			Level:    MUST,
			Source:   "RFC 9110 §7.6: an intermediary forwards the message it received; seed §Basic usage",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			e.SetDefault("a", fakebackend.Behaviour{Body: fakebackend.Text("received")})
			body := randomText(1, largeBody)

			x := e.Do(http.MethodPut, "/body/request/large", []string{"Content-Type: application/octet-stream"}, body)

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(targets(got)).To(HaveLen(1), "requests backend a received")
			Expect(len(got[0].Body)).To(Equal(len(body)), "bytes of content the backend got")
			Expect(digest(got[0].Body)).To(Equal(digest([]byte(body))), "SHA-256 of the content the backend got")
			expectForwardedBody(got[0], body)
		})

		s.It(Meta{
			ID:       "body/request/chunked",
			Title:    "forwards a 1 MiB chunked request body of uneven chunks byte for byte, framed once",
			Level:    MUST,
			Source:   "RFC 9112 §7.1: chunked framing; §6.1: a sender must not send Content-Length with Transfer-Encoding; RFC 9110 §7.6.1: Transfer-Encoding is hop-by-hop, so the proxy frames the body itself",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			e.SetDefault("a", fakebackend.Behaviour{Body: fakebackend.Text("received")})
			body := randomText(2, 1<<20)

			x := e.Do(http.MethodPost, "/body/request/chunked", []string{"Transfer-Encoding: chunked"}, chunk(body, 3))

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			got := e.ReceivedBy("a")
			Expect(targets(got)).To(HaveLen(1), "requests backend a received")
			Expect(digest(got[0].Body)).To(Equal(digest([]byte(body))), "SHA-256 of the content the backend got (%d of %d bytes)", len(got[0].Body), len(body))
			expectForwardedBody(got[0], body)
		})

		s.It(Meta{
			ID:       "body/response/empty",
			Title:    "relays a response with Content-Length: 0 as complete, with nothing after it",
			Level:    MUST,
			Source:   "RFC 9112 §6.3: a Content-Length of 0 means no content",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			e.SetDefault("a", fakebackend.Behaviour{NoBody: true})

			st := e.sendToClose(RawRequest(http.MethodGet, "/body/response/empty", e.Proxy, []string{"Connection: close"}, ""))

			expectOneResponse(st, http.StatusOK, "")
		})

		s.It(Meta{
			ID:       "body/response/large",
			Title:    "relays an 8 MiB response body byte for byte",
			Level:    MUST,
			Source:   "RFC 9110 §7.6: an intermediary forwards the message it received; seed §Basic usage",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			body := randomText(3, largeBody)
			e.SetDefault("a", fakebackend.Behaviour{Body: &body})

			x := e.Get("/body/response/large")

			Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
			Expect(len(x.Body)).To(Equal(len(body)), "bytes of content the client got")
			Expect(digest(x.Body)).To(Equal(digest([]byte(body))), "SHA-256 of the content the client got")
		})

		s.It(Meta{
			ID:       "body/response/chunked",
			Title:    "relays a response sent in 7-byte chunks whole, framed once",
			Level:    MUST,
			Source:   "RFC 9112 §7.1: chunked framing; §6.1: never Content-Length with Transfer-Encoding; RFC 9110 §7.6.1: Transfer-Encoding is hop-by-hop",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			body := randomText(4, 64<<10)
			e.SetDefault("a", fakebackend.Behaviour{Framing: "chunked", ChunkSize: 7, Body: &body})

			st := e.sendToClose(RawRequest(http.MethodGet, "/body/response/chunked", e.Proxy, []string{"Connection: close"}, ""))

			expectOneResponse(st, http.StatusOK, body)
		})

		s.It(Meta{
			ID:       "body/response/close-delimited",
			Title:    "relays a response delimited by the backend's close whole, with a valid framing of its own",
			Level:    MUST,
			Source:   "RFC 9112 §6.3 item 8: a response without Content-Length or Transfer-Encoding ends at the close; the proxy must delimit what it relays (chunked, a Content-Length, or its own close)",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			body := randomText(5, 256<<10)
			e.SetDefault("a", fakebackend.Behaviour{Framing: "close", Body: &body})

			st := e.sendToClose(RawRequest(http.MethodGet, "/body/response/close-delimited", e.Proxy, []string{"Connection: close"}, ""))

			expectOneResponse(st, http.StatusOK, body)
		})

		s.It(Meta{
			ID:       "body/response/head",
			Title:    "relays the response to a HEAD without content, its fields kept, any Content-Length the GET's",
			Level:    MUST,
			Source:   "RFC 9110 §9.3.2: a HEAD response has no content; §8.6: a Content-Length in it must equal the GET's; RFC 9112 §6.3 item 1",
			Profiles: both,
		}, func(e *Env) {
			e.Start(TopologyRequest{Backends: 1})
			const body = "hello, world!"
			e.SetDefault("a", fakebackend.Behaviour{Body: fakebackend.Text(body), Header: []fakebackend.Field{{Name: "X-Head-Probe", Value: "kept"}}})

			st := e.sendToClose(RawRequest(http.MethodHead, "/body/response/head", e.Proxy, []string{"Connection: close"}, ""))

			expectOneResponse(st, http.StatusOK, "")
			Expect(st.finals[0].Header.Values("X-Head-Probe")).To(ConsistOf("kept"), "a field of the backend's HEAD response")
			if cl := fieldValues(st.finalHead(0), "Content-Length"); len(cl) > 0 {
				Expect(cl).To(Equal([]string{strconv.Itoa(len(body))}), "Content-Length of the HEAD response")
			}
			got := e.ReceivedBy("a")
			Expect(targets(got)).To(HaveLen(1), "requests backend a received")
			Expect(got[0].Method).To(Equal(http.MethodHead), "method the backend got")
		})

		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §6.3 item 1: a 204 or 304 response ends with its header section, whatever its fields say; RFC 9110 §15.3.5, §15.4.5",
			Profiles: both,
		}, bodylessStatus,
			Entry(Meta{ID: "body/response/no-body-204", Title: "relays a 204 without content and without Content-Length or Transfer-Encoding",
				Source: "RFC 9110 §15.3.5: a 204 has no content; §8.6 and RFC 9112 §6.1: no Content-Length or Transfer-Encoding in a 204"},
				bodyless{status: http.StatusNoContent}),
			Entry(Meta{ID: "body/response/no-body-304", Title: "relays a 304 without content"},
				bodyless{status: http.StatusNotModified, request: []string{`If-None-Match: "v1"`}}),
			Entry(Meta{ID: "body/response/no-body-204-with-length", Title: "relays a 204 that claims a Content-Length without passing on the bytes after its head",
				Source: "RFC 9112 §6.3 item 1: a 204 ends with its header section even if it carries Content-Length; relaying bytes after it splits the response stream (RFC 9112 §11.1)"},
				bodyless{status: http.StatusNoContent, raw: "HTTP/1.1 204 No Content\r\nX-Proxyspec-Backend: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"}),
			Entry(Meta{ID: "body/response/no-body-304-with-length", Title: "relays a 304 that carries the GET's Content-Length without content",
				Source: "RFC 9112 §6.3 item 1; RFC 9110 §8.6: a 304 may carry the Content-Length of the selected representation"},
				bodyless{status: http.StatusNotModified, request: []string{`If-None-Match: "v1"`}, raw: "HTTP/1.1 304 Not Modified\r\nX-Proxyspec-Backend: a\r\nETag: \"v1\"\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"}),
		)
	})
}

// bodyless is a response status that has no content.
type bodyless struct {
	status  int
	request []string // header lines of the client's request
	raw     string   // the backend's whole response, when not built from status
}

func bodylessStatus(e *Env, c bodyless) {
	e.Start(TopologyRequest{Backends: 1})
	b := fakebackend.Behaviour{Status: c.status}
	if c.raw != "" {
		b = fakebackend.Behaviour{Raw: &c.raw}
	}
	e.SetDefault("a", b)

	st := e.sendToClose(RawRequest(http.MethodGet, "/body/response/bodyless", e.Proxy, append(c.request, "Connection: close"), ""))

	expectOneResponse(st, c.status, "")
	if c.status == http.StatusNoContent {
		head := st.finalHead(0)
		Expect(fieldValues(head, "Content-Length")).To(BeEmpty(), "Content-Length in a 204 (RFC 9110 §8.6)")
		Expect(fieldValues(head, "Transfer-Encoding")).To(BeEmpty(), "Transfer-Encoding in a 204 (RFC 9112 §6.1)")
	}
}

// expectOneResponse checks that a connection opened with Connection: close
// carried exactly one complete final response with status and body, one
// valid framing, and nothing after it, and that the proxy closed it.
func expectOneResponse(st *stream, status int, body string) {
	ginkgo.GinkgoHelper()
	Expect(st.finals).NotTo(BeEmpty(), "no response reached the client: %v", st.problem())
	Expect(st.finals[0].StatusCode).To(Equal(status), "status the client got")
	expectSingleFraming(st.finalHead(0))
	Expect(st.complete(0)).To(Succeed(), "the response as the client read it")
	Expect(len(st.bodies[0])).To(Equal(len(body)), "bytes of content the client got")
	Expect(digest(st.bodies[0])).To(Equal(digest([]byte(body))), "SHA-256 of the content the client got")
	Expect(st.rest).To(BeEmpty(), "bytes after the end of the response (%d responses parsed; %v)", len(st.finals), st.parse)
	Expect(st.statuses()).To(HaveLen(1), "responses on a connection that carried one request")
	Expect(st.closed()).To(BeTrue(), "the proxy left the connection open after answering a request with Connection: close (RFC 9112 §9.6): %v", st.end)
}

// randomText returns n bytes of printable pseudo-random text from seed, the
// same for a seed on every run so that a failure can be replayed.
func randomText(seed uint64, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \r\n{}:;,.-_/+=!?"
	r := rand.New(rand.NewPCG(seed, 0x70726f7879737065))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// chunk frames body in chunks of uneven sizes (1 to 4096 bytes, drawn from
// seed), then the last chunk.
func chunk(body string, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0x6368756e6b))
	var b strings.Builder
	for len(body) > 0 {
		n := min(len(body), 1+r.IntN(4096))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func digest(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

func init() {
	addGroup("truncation", func(s *Suite) {
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §8: a message whose connection closes before its framing says it ends is incomplete; a proxy that has sent the head can only signal it by ending the connection before the promised length (RFC 9112 §6.3, §7.1); seed §502 Bad Gateway",
			Profiles: []Profile{ProfileSeed, ProfileRFC9110},
		}, truncated,
			Entry(Meta{ID: "truncation/content-length", Title: "when the backend closes mid-body, the client never gets a complete response: the connection ends before the Content-Length"},
				fakebackend.Behaviour{Fault: fakebackend.CloseMidBody}),
			Entry(Meta{ID: "truncation/chunked", Title: "when the backend closes before the last chunk, the client never gets the last chunk"},
				fakebackend.Behaviour{Fault: fakebackend.CloseMidBody, Framing: "chunked", ChunkSize: 4 << 10}),
			Entry(Meta{ID: "truncation/reset", Title: "when the backend resets the connection mid-body, the client never gets a complete response"},
				fakebackend.Behaviour{Fault: fakebackend.ResetMidBody}),
			Entry(Meta{ID: "truncation/after-headers", Title: "when the backend closes right after a head promising a body, the client never gets a complete 200"},
				fakebackend.Behaviour{Fault: fakebackend.CloseAfterHeaders}),
		)
	})
}

// truncated makes the backend break off its response as b says and checks
// that the client cannot take what it got for the whole response: it got a
// gateway error, or nothing, or a 200 whose body ends before its framing
// does with the bytes the backend sent.
func truncated(e *Env, b fakebackend.Behaviour) {
	e.Start(TopologyRequest{Backends: 1})
	body := randomText(7, 64<<10)
	b.Body = &body
	e.SetDefault("a", b)

	st := e.sendToClose(RawRequest(http.MethodGet, "/truncation", e.Proxy, nil, ""))

	if len(st.finals) > 0 {
		r := st.finals[0]
		if isGatewayError(r.StatusCode) {
			Expect(st.complete(0)).To(Succeed(), "the gateway error the client got")
		} else {
			Expect(r.StatusCode).To(Equal(http.StatusOK), "status the client got: the backend's 200 or a gateway error")
			Expect(st.complete(0)).NotTo(Succeed(), "the client got a complete response (%d bytes of content, %s) although the backend sent only part of its %d bytes",
				len(st.bodies[0]), framingOf(st.finalHead(0)), len(body))
			Expect(body).To(HavePrefix(string(st.bodies[0])), "the partial content the client got is not the start of the backend's")
		}
		Expect(st.statuses()).To(HaveLen(1), "responses on the connection")
	}
	if e.Profile() == ProfileSeed {
		// The reference cuts the connection as soon as the backend fails.
		Expect(st.closed()).To(BeTrue(), "the proxy left the client waiting instead of closing the connection: %v", st.end)
	}
}

// framingOf describes how a response head delimits its body, for messages.
func framingOf(head []fakebackend.Field) string {
	if te := fieldValues(head, "Transfer-Encoding"); len(te) > 0 {
		return "Transfer-Encoding: " + strings.Join(te, ", ")
	}
	if cl := fieldValues(head, "Content-Length"); len(cl) > 0 {
		return "Content-Length: " + strings.Join(cl, ", ")
	}
	return "delimited by the close"
}
