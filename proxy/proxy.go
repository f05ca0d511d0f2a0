package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ReverseProxy forwards HTTP/1.1 requests to a list of backends in turn,
// failing over to the next one when a backend cannot be reached. It is an
// http.Handler, and Wrap makes it a middleware.
type ReverseProxy struct {
	backends  []backend
	prefix    string
	strategy  Strategy
	transport http.RoundTripper
	log       *slog.Logger
}

// New returns a proxy for the backends, tried in the order given. A backend
// string that cannot be used is an error naming it. An empty list is allowed:
// such a proxy answers 502 Bad Gateway to every request it handles.
func New(backends []string, opts ...Option) (*ReverseProxy, error) {
	c := config{
		connectTimeout: DefaultConnectTimeout,
		readTimeout:    DefaultReadTimeout,
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	p := &ReverseProxy{prefix: c.prefix, strategy: c.strategy, log: c.logger}
	for _, s := range backends {
		b, err := parseBackend(s)
		if err != nil {
			return nil, err
		}
		p.backends = append(p.backends, b)
	}
	if p.strategy == nil {
		p.strategy = new(RoundRobin)
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	// The exchange speaks HTTP/1.1 only, never adds Accept-Encoding (so it
	// never decodes an answer behind the client's back) and knows no
	// environment proxy: the backend list is the only route.
	x := &exchange{
		dial: dialer(c.connectTimeout, c.readTimeout),
		// How long to hold a body sent with Expect: 100-continue while the
		// backend neither refuses nor invites it (RFC 9110 §10.1.1).
		expectContinue: time.Second,
	}
	if c.pooled {
		x.idle = newIdleConns(PooledIdlePerBackend, PooledIdleTimeout)
	}
	var rt http.RoundTripper = x
	if c.wrap != nil {
		rt = c.wrap(rt)
	}
	p.transport = rt
	return p, nil
}

// ServeHTTP proxies the requests under the path prefix and answers the
// others with 404 Not Found.
func (p *ReverseProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.matches(r) {
		http.NotFound(w, r)
		return
	}
	p.serve(w, r)
}

// Wrap returns a handler that proxies the requests under the path prefix
// and hands every other request to next; those never reach a backend.
func (p *ReverseProxy) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.matches(r) {
			p.serve(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// matches reports whether r is under the path prefix. The decoded path is
// compared after removing dot segments (RFC 3986 §5.2.4), so /api/../admin is
// not under /api: a backend resolving the dot segments would otherwise be
// reached for a path outside the prefix.
func (p *ReverseProxy) matches(r *http.Request) bool {
	if p.prefix == "" {
		return true
	}
	clean := r.URL.Path
	if strings.HasPrefix(clean, "/") {
		clean = path.Clean(clean)
	}
	return clean == p.prefix || strings.HasPrefix(clean, p.prefix+"/")
}

// outcome is what the request log records.
type outcome struct {
	status   int
	backend  string
	attempts int
	aborted  bool
}

func (p *ReverseProxy) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var o outcome
	defer func() {
		p.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("target", r.RequestURI),
			slog.Int("status", o.status),
			slog.String("backend", o.backend),
			slog.Int("attempts", o.attempts),
			slog.Bool("aborted", o.aborted),
			slog.Duration("duration", time.Since(start)))
	}()

	if !asciiTarget(r.RequestURI) {
		// net/http accepts bytes above 0x7f in the request-target; RFC 9112
		// §3.2 does not, and forwarding them would send the backend an
		// invalid request line. §3.2 allows answering 400.
		plainText(w, http.StatusBadRequest, "400 Bad Request")
		o.status = http.StatusBadRequest
		return
	}
	closeAfterChunked(w, r)
	if r.Method == http.MethodConnect {
		// A reverse proxy has no tunnels to open; CONNECT is a method it knows
		// and never supports (RFC 9110 §9.3.6, §15.5.6).
		w.Header().Set("Allow", allowed)
		plainText(w, http.StatusMethodNotAllowed, "405 Method Not Allowed")
		o.status = http.StatusMethodNotAllowed
		return
	}
	n := len(p.backends)
	if n == 0 {
		badGateway(w)
		o.status = http.StatusBadGateway
		return
	}
	first := p.strategy.Next(r, n) % n
	if first < 0 {
		first += n
	}
	// The transport reads the request body in its own goroutine, to the
	// end and one read beyond (to catch a body longer than announced). By
	// default net/http's server discards and closes an unfinished request
	// body when the response head goes out; that closed body then fails
	// the transport's last read, which drops the upstream connection in the
	// middle of the response. Full duplex leaves the body to its reader.
	http.NewResponseController(w).EnableFullDuplex()
	hdr := outboundHeader(r)
	body := newRequestBody(r)
	defer body.settle(w)
	for i := range n {
		b := p.backends[(first+i)%n]
		o.attempts++
		t0 := time.Now()
		a, res, err := p.attempt(w, r, b, hdr, body, i == 0)
		if err == nil {
			o.backend = b.addr
			p.respond(w, r, a, res, body, &o)
			return
		}
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream attempt failed",
			slog.String("backend", b.addr),
			slog.Int("attempt", i+1),
			slog.String("class", errorClass(err)),
			slog.Duration("elapsed", time.Since(t0)),
			slog.Bool("sent", a.sent()),
			slog.String("error", err.Error()))
		if r.Context().Err() != nil {
			// The client left; nobody is waiting for an answer.
			o.aborted = true
			return
		}
		if body.clientFault() {
			// The client's body could not be read (RFC 9112 §7.1: a
			// malformed chunk, or the client stalled or left): no backend
			// is to blame and none would do better. The fault is the
			// client's, so the answer is 400, not 502.
			body.closeIfUnread(w)
			plainText(w, http.StatusBadRequest, "400 Bad Request")
			o.status = http.StatusBadRequest
			return
		}
		// A request of which no byte left may go anywhere. One that did may
		// have been acted upon: only an idempotent request (RFC 9110 §9.2.2)
		// may be sent again. Either way the body must still be whole.
		if !body.intact() || a.sent() && !idempotent(r.Method) {
			break
		}
	}
	body.closeIfUnread(w)
	badGateway(w)
	o.status = http.StatusBadGateway
}

// asciiTarget reports whether a request-target read from the wire is
// visible ASCII; an in-process request has none ("").
func asciiTarget(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f {
			return false
		}
	}
	return true
}

// allowed is the Allow value sent with the 405 for CONNECT: the methods of
// RFC 9110 §9 that the proxy forwards (it forwards any other method too).
const allowed = "GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH"

// idempotent reports whether repeating method is harmless (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// attempt is one try of a request against one backend.
type attempt struct {
	conn   atomic.Pointer[upstreamConn]
	cancel context.CancelFunc
}

// sent reports whether any byte of the request reached the connection.
func (a *attempt) sent() bool {
	c := a.conn.Load()
	return c != nil && c.sent()
}

// attempt sends r to b once, through the configured RoundTripper. On success
// the caller owns res and must call a.cancel when done with it.
func (p *ReverseProxy) attempt(w http.ResponseWriter, r *http.Request, b backend, hdr http.Header, body *requestBody, first bool) (*attempt, *http.Response, error) {
	a := &attempt{}
	ctx, cancel := context.WithCancel(r.Context())
	a.cancel = cancel
	arm := func() {
		if c := a.conn.Load(); c != nil {
			c.arm()
		}
	}
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if c, ok := info.Conn.(*upstreamConn); ok {
				a.conn.Store(c)
			}
		},
		WroteRequest:         func(httptrace.WroteRequestInfo) { arm() },
		GotFirstResponseByte: arm,
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			informational(w, r, code, http.Header(h))
			return nil
		},
	}
	out, err := outboundRequest(httptrace.WithClientTrace(ctx, trace), r, b, hdr, body, first)
	if err != nil {
		cancel()
		return a, nil, err
	}
	res, err := p.transport.RoundTrip(out)
	if err != nil {
		cancel()
		return a, nil, err
	}
	return a, res, nil
}

// outboundRequest builds the request for one attempt.
func outboundRequest(ctx context.Context, r *http.Request, b backend, hdr http.Header, body *requestBody, first bool) (*http.Request, error) {
	rc, err := body.next(first)
	if err != nil {
		return nil, fmt.Errorf("proxy: copying request body: %w", err)
	}
	rawPath, rawQuery, hasQuery := requestTarget(r)
	u := &url.URL{Scheme: "http", Host: b.addr, RawQuery: rawQuery, ForceQuery: hasQuery && rawQuery == ""}
	if strings.HasPrefix(rawPath, "//") {
		// An opaque "//x" would be written as "http://x"; carry it as a path.
		u.Path, u.RawPath = rawPath, rawPath
		if p, err := url.PathUnescape(rawPath); err == nil {
			u.Path = p
		}
	} else {
		// Opaque is written as is: the target goes out byte for byte, not
		// re-encoded from the decoded path.
		u.Opaque = rawPath
	}
	out := &http.Request{
		Method:     r.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     hdr.Clone(),
		Host:       b.host,
		Close:      true,
		Trailer:    r.Trailer,
	}
	if rc != nil {
		out.Body = rc
		out.ContentLength = r.ContentLength // -1 goes out chunked
	}
	return out.WithContext(ctx), nil
}

// informational forwards a 1xx response (103 Early Hints, 100 Continue) to
// the client. HTTP/1.0 clients get none (RFC 9110 §15.2).
func informational(w http.ResponseWriter, r *http.Request, code int, h http.Header) {
	if !r.ProtoAtLeast(1, 1) {
		return
	}
	h = h.Clone()
	removeHopByHop(h)
	dst := w.Header()
	clear(dst) // only the proxy's own Connection: close, meant for the final response
	for k, vv := range h {
		dst[k] = vv
	}
	w.WriteHeader(code)
	// The server writes the header map with each 1xx but keeps it: clear it
	// so that these fields do not leak into the final response.
	clear(dst)
	closeAfterChunked(w, r)
}

// closeAfterChunked makes the server close the client connection after the
// response to a request with a chunked body. RFC 9112 §6.1 requires closing
// after a request that carried both Content-Length and Transfer-Encoding:
// the bytes after the chunked body may be a request smuggled past a front
// end that went by Content-Length. net/http drops that Content-Length before
// the handler runs, so the two cannot be told apart here; closing after
// every chunked request is the safe superset.
func closeAfterChunked(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
}

// respond forwards the backend's response and records it in o. When the
// backend fails after the headers went out, it aborts the client connection.
func (p *ReverseProxy) respond(w http.ResponseWriter, r *http.Request, a *attempt, res *http.Response, body *requestBody, o *outcome) {
	defer a.cancel()
	defer res.Body.Close()
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Upgrade was stripped, so the backend switched protocols unasked;
		// there is nothing the proxy could relay.
		body.closeIfUnread(w)
		badGateway(w)
		o.status = http.StatusBadGateway
		return
	}
	if c := a.conn.Load(); c != nil {
		// net/http drops Connection when it says close: add back what the
		// backend sent, so that the fields it names are removed too.
		if v, ok := c.head.connection(); ok {
			res.Header["Connection"] = append(res.Header["Connection"], v...)
		}
	}
	removeHopByHop(res.Header)
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = vv
	}
	if _, ok := res.Header["Content-Type"]; !ok {
		// Stop the server from sniffing one and adding it.
		h["Content-Type"] = nil
	}
	trailers := forwardableTrailers(res.Trailer)
	if len(trailers) > 0 {
		h["Trailer"] = []string{strings.Join(trailers, ", ")}
	}
	body.closeIfUnread(w)
	w.WriteHeader(res.StatusCode)
	o.status = res.StatusCode
	// Send the head now rather than with the first body bytes: a client of
	// a slow or long-polling backend learns the status as soon as the proxy
	// does. When body bytes have arrived with the head, the first copy
	// sends both at once, without waiting and in one write instead of two.
	rc := http.NewResponseController(w)
	if !bodyArrived(res) {
		rc.Flush()
	}

	if err := copyBody(w, rc, res.Body); err != nil {
		// Headers are gone; the only honest signal left is to cut the
		// connection so the client cannot take a partial body for a whole
		// one (a chunked response would otherwise get its last chunk).
		o.aborted = true
		// The head may still be in the buffer (bodyArrived): send it and
		// what came of the body, so that the client sees a cut response,
		// not a connection closed with no answer it might take as a
		// reason to send the request again.
		rc.Flush()
		if !errors.Is(err, errClientWrite) {
			p.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream failed mid-response",
				slog.String("backend", o.backend),
				slog.String("class", errorClass(err)),
				slog.String("error", err.Error()))
		}
		panic(http.ErrAbortHandler)
	}
	// Trailers are known once the body is read; the server sends the
	// announced ones in the chunked trailer section (RFC 9112 §7.1.2), which
	// HTTP/1.0 clients do not get.
	for _, k := range trailers {
		h[k] = res.Trailer[k]
	}
	for k, vv := range res.Trailer {
		if !hopByHop(k) && !contains(trailers, k) {
			h[http.TrailerPrefix+k] = vv
		}
	}
}

// bodyArrived reports whether the first read of res's body will return at
// once: some of a body of known length is already in memory, where the
// RoundTripper can tell (the exchange can). Bytes of a chunked
// body may be no more than a chunk-size line, after which the read waits.
func bodyArrived(res *http.Response) bool {
	b, ok := res.Body.(interface{ Buffered() int })
	return ok && res.ContentLength > 0 && b.Buffered() > 0
}

// forwardableTrailers lists the announced trailer fields that may be
// forwarded: hop-by-hop fields are dropped here too.
func forwardableTrailers(t http.Header) []string {
	var names []string
	for k := range t {
		if !hopByHop(k) {
			names = append(names, k)
		}
	}
	return names
}

func hopByHop(name string) bool {
	return contains(hopHeaders, http.CanonicalHeaderKey(name))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// errClientWrite marks a failure to write to the client, as opposed to a
// failure to read from the backend.
var errClientWrite = errors.New("writing to client")

// copyBody streams the body with a fixed buffer, flushing after each write
// so that the client sees data as soon as the backend sends it (a gap in the
// backend's body is a gap for the client, not a stall in a buffer).
func copyBody(w io.Writer, rc *http.ResponseController, body io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("%w: %w", errClientWrite, err)
			}
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return fmt.Errorf("%w: %w", errClientWrite, err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// badGateway answers 502 without saying which backend failed or how.
func badGateway(w http.ResponseWriter) {
	plainText(w, http.StatusBadGateway, "502 Bad Gateway")
}

func plainText(w http.ResponseWriter, code int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(code)
	io.WriteString(w, body)
}
