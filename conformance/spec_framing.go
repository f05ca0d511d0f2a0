package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
)

func init() {
	addGroup("framing", func(s *Suite) {
		both := []Profile{ProfileSeed, ProfileRFC9110}

		// What the backend gets for the common ways a client frames a
		// request: one framing, the same content.
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §6.1: a sender must not send Content-Length with Transfer-Encoding; RFC 9110 §8.6: at most one Content-Length value; RFC 9112 §6.3",
			Profiles: both,
		}, requestFraming,
			Entry(Meta{ID: "framing/request/content-length", Title: "forwards a Content-Length body with one framing and the same content"},
				framedBody{header: []string{"Content-Length: 13"}, wire: "hello, world!", body: "hello, world!"}),
			Entry(Meta{ID: "framing/request/chunked", Title: "forwards a chunked body with one framing and the same content"},
				framedBody{header: []string{"Transfer-Encoding: chunked"}, wire: "5\r\nhello\r\n8\r\n, world!\r\n0\r\n\r\n", body: "hello, world!"}),
			Entry(Meta{ID: "framing/request/chunked-extensions", Title: "forwards a chunked body with chunk extensions, upper-case sizes and leading zeros as its content only",
				Source: "RFC 9112 §7.1: chunk-size is 1*HEXDIG; §7.1.1: a recipient must ignore unrecognized chunk extensions"},
				framedBody{header: []string{"Transfer-Encoding: chunked"}, wire: "0005;a=1;b=\"two\"\r\nhello\r\nA;x\r\n0123456789\r\n000\r\n\r\n", body: "hello0123456789"}),
			// net/http's chunked reader rejects whitespace before ';', so
			// the reference cannot pass this one: rfc9110 only.
			Entry(Meta{ID: "framing/request/chunk-extension-whitespace", Title: "accepts whitespace around a chunk extension's ';' and '=' and forwards the content only",
				Source:   "RFC 9112 §7.1.1: chunk-ext = *( BWS \";\" BWS chunk-ext-name [ BWS \"=\" BWS chunk-ext-val ] ); RFC 9110 §5.6.3: a recipient must parse and remove bad whitespace",
				Profiles: []Profile{ProfileRFC9110}},
				framedBody{header: []string{"Transfer-Encoding: chunked"}, wire: "5 ;\ta = 1\r\nhello\r\n0\r\n\r\n", body: "hello"}),
			Entry(Meta{ID: "framing/request/chunked-trailers", Title: "forwards a chunked body with a trailer section: the content intact, trailer fields never in the body",
				Source: "RFC 9112 §7.1.2: a trailer section follows the last chunk; RFC 9110 §6.5: a recipient may discard trailer fields it does not process"},
				framedBody{header: []string{"Transfer-Encoding: chunked", "Trailer: X-Checksum"}, wire: "5\r\nhello\r\n0\r\nX-Checksum: 42\r\n\r\n", body: "hello"}),
		)

		// Framing the backend gets wrong: the proxy must not pass on two
		// framings, or framing it cannot trust.
		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §6.3 item 3: an intermediary that forwards a message with both Content-Length and Transfer-Encoding must first remove Content-Length and process the chunked framing",
			Profiles: both,
		}, responseFraming,
			Entry(Meta{ID: "framing/response/single-framing-header", Title: "never relays a response with both Content-Length and Transfer-Encoding; decodes the chunked body"},
				badResponse{framing: "chunked", chunk: 5, header: []string{"Content-Length: 3"}, body: "hello, chunked world", decoded: "hello, chunked world"}),
			Entry(Meta{ID: "framing/response/duplicate-content-length", Title: "relays a response whose Content-Length is repeated with equal values with a single one (or refuses it with 502)",
				Source: "RFC 9110 §8.6: a recipient may replace a Content-Length repeated with identical values by one valid value, or reject it; RFC 9112 §6.3 item 5"},
				badResponse{header: []string{"Content-Length: 13"}, body: "hello, world!", decoded: "hello, world!"}),
		)

		Table(s, Meta{
			Level:    MUST,
			Source:   "RFC 9112 §6.3 item 5: a proxy that receives a response with an invalid Content-Length must close the connection to the server, discard the response and send 502 to the client",
			Profiles: both,
		}, invalidResponseLength,
			Entry(Meta{ID: "framing/response/conflicting-content-length", Title: "answers 502 to a backend response with two different Content-Length values"},
				"Content-Length: 5\r\nContent-Length: 13"),
			Entry(Meta{ID: "framing/response/content-length-list", Title: "answers 502 to a backend response whose Content-Length lists different values"},
				"Content-Length: 5, 13"),
			Entry(Meta{ID: "framing/response/content-length-sign", Title: "answers 502 to a backend response whose Content-Length has a sign"},
				"Content-Length: +13"),
			Entry(Meta{ID: "framing/response/content-length-not-a-number", Title: "answers 502 to a backend response whose Content-Length is not a number"},
				"Content-Length: 0x0d"),
		)
	})
}

// framedBody is a request body as the client frames it, and its content.
type framedBody struct {
	header []string
	wire   string // the body bytes as sent, framing included
	body   string // the content
}

// requestFraming sends a POST framed as fb says and checks that the backend
// got its content under exactly one valid framing.
func requestFraming(e *Env, fb framedBody) {
	e.Start(TopologyRequest{Backends: 1})

	x := e.Do(http.MethodPost, "/framing/request", fb.header, fb.wire)

	Expect(x.Status()).To(Equal(http.StatusOK), "status the client got")
	got := e.ReceivedBy("a")
	Expect(targets(got)).To(HaveLen(1), "requests backend a received")
	expectForwardedBody(got[0], fb.body)
}

// expectForwardedBody checks that r carries body under one framing: either
// a single Content-Length equal to its length, or chunked alone (or, for an
// empty body, no framing at all).
func expectForwardedBody(r fakebackend.Request, body string) {
	ginkgo.GinkgoHelper()
	Expect(string(r.Body)).To(Equal(body), "the content the backend decoded")
	cl, te := r.Values("Content-Length"), r.Values("Transfer-Encoding")
	switch {
	case len(te) > 0:
		Expect(cl).To(BeEmpty(), "Content-Length sent next to Transfer-Encoding (RFC 9112 §6.1)")
		Expect(listTokens(te)).To(Equal([]string{"chunked"}), "the Transfer-Encoding the backend got: the proxy's own, chunked once")
	case len(cl) > 0:
		Expect(cl).To(Equal([]string{strconv.Itoa(len(body))}), "Content-Length lines the backend got: exactly one, equal to the content's length")
	default:
		Expect(body).To(BeEmpty(), "a body was sent without Content-Length or Transfer-Encoding")
	}
}

// badResponse is a backend response with framing fields of its own.
type badResponse struct {
	framing string
	chunk   int
	header  []string // added after the backend's own framing field
	body    string
	decoded string // what a client must get as content, if it gets the response
}

// responseFraming makes the backend answer with extra framing fields and
// checks that the client either gets a gateway error or the decoded content
// under a single valid framing.
func responseFraming(e *Env, c badResponse) {
	e.Start(TopologyRequest{Backends: 1})
	e.SetDefault("a", fakebackend.Behaviour{Framing: c.framing, ChunkSize: c.chunk, Header: parseFields(c.header), Body: fakebackend.Text(c.body)})

	st := e.sendToClose(RawRequest(http.MethodGet, "/framing/response", e.Proxy, []string{"Connection: close"}, ""))

	Expect(st.finals).NotTo(BeEmpty(), "no response reached the client: %v", st.problem())
	if isGatewayError(st.finals[0].StatusCode) {
		return // refusing an ambiguous response is allowed
	}
	Expect(st.finals[0].StatusCode).To(Equal(http.StatusOK), "status the client got")
	expectSingleFraming(st.finalHead(0))
	Expect(st.complete(0)).To(Succeed(), "the response as the client read it")
	Expect(string(st.bodies[0])).To(Equal(c.decoded), "the content the client got")
}

// invalidResponseLength makes the backend answer with an unusable
// Content-Length and checks the client gets 502 and nothing of the body.
func invalidResponseLength(e *Env, lines string) {
	e.Start(TopologyRequest{Backends: 1})
	raw := "HTTP/1.1 200 OK\r\nX-Proxyspec-Backend: a\r\n" + lines + "\r\nConnection: close\r\n\r\nhello, world!"
	e.SetDefault("a", fakebackend.Behaviour{Raw: &raw})

	x := e.Send(RawRequest(http.MethodGet, "/framing/response/invalid-length", e.Proxy, nil, ""))

	Expect(x.Status()).To(Equal(http.StatusBadGateway), "status the client got for a response whose framing cannot be trusted (reading it: %v)", x.Err)
	Expect(x.Err).NotTo(HaveOccurred(), "reading the 502")
	Expect(string(x.Body)).NotTo(ContainSubstring("hello, world!"), "the discarded response's content reached the client")
}

// isGatewayError reports whether status is one a proxy answers with when it
// gets no usable response (RFC 9110 §15.6.3-5).
func isGatewayError(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// expectSingleFraming checks the fields of a response head as the client
// received them: never Content-Length with Transfer-Encoding, at most one
// Content-Length line holding one number, chunked applied at most once and
// last (RFC 9112 §6.1, §6.3; RFC 9110 §8.6).
func expectSingleFraming(head []fakebackend.Field) {
	ginkgo.GinkgoHelper()
	Expect(head).NotTo(BeNil(), "no CRLF-terminated response head arrived")
	cl, te := fieldValues(head, "Content-Length"), listTokens(fieldValues(head, "Transfer-Encoding"))
	Expect(len(cl)).To(BeNumerically("<=", 1), "Content-Length lines in the response: %q", cl)
	if len(te) > 0 {
		Expect(cl).To(BeEmpty(), "Content-Length next to Transfer-Encoding %q in the response", te)
		Expect(te[len(te)-1]).To(Equal("chunked"), "the response's last transfer coding")
		Expect(te[:len(te)-1]).NotTo(ContainElement("chunked"), "chunked applied twice to the response")
	}
	if len(cl) == 1 {
		Expect(cl[0]).To(MatchRegexp(`^[0-9]+$`), "the response's Content-Length")
	}
}

// stream is everything one connection to the proxy carried back, read until
// the proxy closed it: the responses in order and how the connection ended.
type stream struct {
	x      *Exchange // the first final response, recorded as evidence
	raw    []byte
	starts []int                 // offset in raw of every response head
	heads  [][]fakebackend.Field // the field lines of every head, 1xx included
	finals []*http.Response
	bodies [][]byte
	errs   []error // per final response: why its body is incomplete, or nil
	rest   []byte  // bytes after the last response that parsed
	parse  error   // why parsing stopped before the end, if it did
	end    error   // nil when the proxy closed the connection (EOF); else the read error
}

// sendToClose writes raw on a fresh connection and reads until the proxy
// closes it, bounded by ResponseTimeout; then it parses every response in
// what arrived. Unlike Send it sees what follows the first response: a
// body after a HEAD, a response to a smuggled request, a connection left
// open. The first final response becomes part of the evidence.
func (e *Env) sendToClose(raw string) *stream {
	ginkgo.GinkgoHelper()
	e.mustBeStarted()
	s := &stream{x: &Exchange{Request: []byte(raw)}}
	start := time.Now()
	defer func() {
		s.x.Took = time.Since(start)
		e.mu.Lock()
		e.exchanges = append(e.exchanges, s.x)
		e.mu.Unlock()
	}()

	conn, err := net.DialTimeout("tcp", e.Proxy, e.Within(e.ConnectTimeout()))
	if err != nil {
		s.x.Err = fmt.Errorf("dial %s: %w", e.Proxy, err)
		s.end = s.x.Err
		return s
	}
	defer conn.Close()
	if err := conn.SetDeadline(start.Add(e.ResponseTimeout())); err != nil {
		s.x.Err = fmt.Errorf("set deadline: %w", err)
		s.end = s.x.Err
		return s
	}
	go conn.Write([]byte(raw)) // the proxy may answer before reading it all
	s.raw, s.end = io.ReadAll(conn)
	s.x.Raw = s.raw
	s.split(requestMethod([]byte(raw)))
	return s
}

// split parses the responses in s.raw. The first answers method; any later
// one answers a pipelined (smuggled) GET.
func (s *stream) split(method string) {
	src := bytes.NewReader(s.raw)
	br := bufio.NewReader(src)
	at := func() int { return len(s.raw) - src.Len() - br.Buffered() }
	for at() < len(s.raw) {
		off := at()
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			s.parse = fmt.Errorf("response at byte %d: %w", off, err)
			break
		}
		s.starts = append(s.starts, off)
		s.heads = append(s.heads, headFields(s.raw[off:]))
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			if len(s.finals) == 0 {
				s.x.Informational = append(s.x.Informational, resp)
			}
			continue
		}
		body, err := io.ReadAll(resp.Body)
		s.finals = append(s.finals, resp)
		s.bodies = append(s.bodies, body)
		s.errs = append(s.errs, err)
		if len(s.finals) == 1 {
			s.x.Response, s.x.Body = resp, body
			if err != nil {
				s.x.Err = fmt.Errorf("reading response body (%d bytes read): %w", len(body), err)
			}
		}
		if err != nil {
			break
		}
		method = http.MethodGet
	}
	s.rest = s.raw[min(at(), len(s.raw)):]
	if len(s.finals) == 0 && s.x.Err == nil {
		s.x.Err = s.problem()
	}
}

// complete reports why final response i is not complete as the client read
// it, or nil: its body ended as its framing said, and a close-delimited one
// ended with the connection.
func (s *stream) complete(i int) error {
	if i >= len(s.finals) {
		return fmt.Errorf("no response %d: %v", i+1, s.problem())
	}
	if s.errs[i] != nil {
		return fmt.Errorf("body ended early after %d bytes: %w", len(s.bodies[i]), s.errs[i])
	}
	r := s.finals[i]
	if r.ContentLength < 0 && len(r.TransferEncoding) == 0 && s.end != nil {
		return fmt.Errorf("body delimited by the connection's close, which never came: %w", s.end)
	}
	return nil
}

// finalHead returns the field lines of final response i, as they arrived.
func (s *stream) finalHead(i int) []fakebackend.Field {
	n := -1
	for j, h := range s.heads {
		if status := statusAt(s.raw[s.starts[j]:]); status >= 200 || status == http.StatusSwitchingProtocols {
			if n++; n == i {
				return h
			}
		}
	}
	return nil
}

// closed reports whether the proxy ended the connection, by a close or a
// reset, rather than leaving it open until the client gave up.
func (s *stream) closed() bool {
	var ne net.Error
	return s.end == nil || !(errors.As(s.end, &ne) && ne.Timeout())
}

// problem describes what went wrong reading the stream, for messages.
func (s *stream) problem() error {
	var errs []error
	if s.parse != nil {
		errs = append(errs, s.parse)
	}
	if s.end != nil {
		errs = append(errs, fmt.Errorf("connection: %w", s.end))
	}
	if len(errs) == 0 {
		return fmt.Errorf("%d bytes, no complete response", len(s.raw))
	}
	return errors.Join(errs...)
}

// headFields returns the field lines of the response head at the start of
// raw, or nil when no CRLF CRLF ends it. It reads bytes rather than the
// parsed response, which folds or drops duplicate framing fields.
func headFields(raw []byte) []fakebackend.Field {
	head, _, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		return nil
	}
	lines := strings.Split(string(head), "\r\n")
	fs := parseFields(lines[1:])
	if fs == nil {
		fs = []fakebackend.Field{}
	}
	return fs
}

// statusAt is the status code of the response starting raw, or 0.
func statusAt(raw []byte) int {
	line, _, _ := bytes.Cut(raw, []byte("\r\n"))
	f := strings.Fields(string(line))
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// statuses returns the final responses' status lines, for messages that
// would otherwise print whole responses.
func (s *stream) statuses() []string { return statuses(s.finals) }

func statuses(rs []*http.Response) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Proto + " " + r.Status
	}
	return out
}

// targets returns "METHOD target" of each request, for messages.
func targets(rs []fakebackend.Request) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Method + " " + r.Target
	}
	return out
}
