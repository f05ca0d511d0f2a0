// Package proxy is the reference reverse proxy of the conformance kit: the
// behaviour of the seed's ReverseProxy middleware (round-robin over a list
// of backends, failover, hop-by-hop header removal, X-Forwarded-For and Via,
// connect/read/write timeouts, 502 Bad Gateway) written in Go on net/http.
// The conformance suite is measured against it, so where the seed is vague or
// disagrees with RFC 9110/9112 this package follows the RFC; every such
// choice is listed below.
//
// # Usage
//
//	p, err := proxy.New([]string{"http://10.0.0.1:8080", "10.0.0.2:8080"},
//		proxy.WithPathPrefix("/api"))
//	http.ListenAndServe(":8080", p)            // 404 outside /api
//	http.ListenAndServe(":8080", p.Wrap(app))  // app serves outside /api
//
// Middleware stacks with Chain, first listed outermost, e.g. the seed's
// rate limiter (package ratelimit) in front of the proxy:
//
//	h := proxy.Chain(limiter.Wrap, p.Wrap)(app)
//
// # Backends
//
// A backend is written http://host:port (path, query and fragment ignored),
// h2://host:port, host:port or host (port 80); IPv6 literals in brackets;
// schemes in any case. h2 is the seed's alias for plain TCP: the proxy
// speaks HTTP/1.1 to it, there is neither TLS nor HTTP/2. https and other
// schemes, userinfo, ports outside 1..65535, empty strings and whitespace
// are rejected by New with an error naming the string.
//
// # Selection and failover
//
// A Strategy picks the first backend of each request (RoundRobin: one
// atomic increment per request); attempt i goes to backend (start+i) mod n.
// A failed attempt moves on to the next backend; when all have failed, or
// none is configured, the client gets 502 Bad Gateway, text/plain, body
// "502 Bad Gateway", never naming a backend. Each failed attempt is logged
// (backend, error class such as refused/timeout/reset/dns/eof, elapsed).
//
// The seed fails over on any connection failure. Sending a request twice is
// only safe when it cannot have been acted upon, so the proxy counts the
// bytes it wrote to each upstream connection (a net.Conn wrapper found
// through httptrace.GotConn):
//   - nothing written (refused, connect timeout, DNS failure): fail over;
//   - something written: fail over only if the method is idempotent (RFC
//     9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE) and the body can
//     be sent again: there is none, Request.GetBody can copy it, or no byte
//     of it was consumed yet (e.g. while waiting for 100 Continue);
//     otherwise 502;
//   - response headers received: the attempt succeeded, whatever the status
//     (a backend's own 5xx is forwarded, not failed over). If the backend
//     then fails, the client connection is aborted (http.ErrAbortHandler)
//     so the client cannot mistake a truncated body for a complete one.
//
// # Headers
//
// Removed in both directions (RFC 9110 §7.6.1): Connection, Keep-Alive,
// Proxy-Authenticate, Proxy-Authorization, Proxy-Connection, TE, Trailer,
// Trailers, Transfer-Encoding, Upgrade and every field named in any
// Connection line. The seed's list lacks Proxy-Connection and Trailer and
// the Connection-named fields; the RFC requires them.
//
// Added upstream: X-Forwarded-For (the client IP appended to the incoming
// list, all lines joined with ", "), Via (appended likewise), Host (the
// backend's host, with :port unless 80) and Connection: close (one upstream
// connection per request, no keep-alive). Via carries the protocol version
// the proxy received (RFC 9110 §7.6.3): "1.1 rws" as the seed says for
// HTTP/1.1 clients, "1.0 rws" for HTTP/1.0 ones. Nothing else is added: no
// User-Agent, no Accept-Encoding. Framing (Content-Length or chunked) is
// regenerated for each hop.
//
// The request target goes upstream byte for byte (carried in URL.Opaque, so
// net/http does not re-encode it), prefix included. An absolute-form target
// (GET http://host/x) is sent as origin-form (/x) and its authority is
// ignored (RFC 9112 §3.2.2): the upstream comes only from the backend list,
// so the proxy is never an open proxy. One limit: a target starting with
// "//" cannot travel in Opaque, and net/http re-encodes it if it holds bytes
// it would escape.
//
// A request-target with bytes outside visible ASCII, which net/http lets
// through, is answered 400 Bad Request (RFC 9112 §3.2) rather than passed
// on as an invalid request line.
//
// CONNECT is answered 405 Method Not Allowed with an Allow header: a
// reverse proxy has no tunnel to offer (RFC 9110 §9.3.6, §15.5.6). Upgrade
// being hop-by-hop, WebSocket and other protocol switches are not proxied; a
// 101 from a backend is answered 502.
//
// After a request with a chunked body the client connection is closed.
// RFC 9112 §6.1 requires it after a request carrying both Content-Length
// and Transfer-Encoding (the bytes after the chunked body may be a smuggled
// request); net/http drops such a Content-Length before the handler runs,
// so the proxy closes after every chunked request, a safe superset.
//
// net/http also deletes a response's whole Connection field when it says
// close, which every backend answering Connection: close may do; the proxy
// watches the raw response head on its upstream connection so that the
// other fields named there are still removed.
//
// Responses: the backend's fields minus hop-by-hop ones. net/http adds Date
// when the backend sent none (RFC 9110 §6.6.1 asks a proxy to) and writes
// the standard reason phrase; the proxy stops it from sniffing a
// Content-Type the backend did not send. Trailers of a chunked response are
// forwarded as trailers to HTTP/1.1 clients (RFC 9110 §6.5 lets a proxy
// forward or drop them; hop-by-hop names are dropped); HTTP/1.0 clients
// cannot receive trailers. Request trailers announced in a Trailer field are
// forwarded likewise.
//
// 1xx responses (103 Early Hints, 100 Continue) are forwarded as they come,
// except to HTTP/1.0 clients (RFC 9110 §15.2). Expect: 100-continue is
// forwarded, and the client's body is only read once the backend asked for
// it or a second passed.
//
// # Path prefix
//
// WithPathPrefix("/api") proxies /api, /api/ and /api/... and nothing else
// (not /apix). The decoded path is compared after removing dot segments, so
// /api/../admin is outside the prefix (a backend resolving dot segments
// would otherwise be reached for a path the prefix excludes). Outside the
// prefix, ServeHTTP answers 404 and a Wrap handler calls the next handler;
// no backend is contacted.
//
// # Timeouts
//
// Connect timeout (default 5 s): each TCP connect, name resolution included.
// Read timeout (default 30 s): the wait for response headers once the
// request is written, and then every gap between reads of the response
// body, as a deadline set before each read on the upstream connection (a
// slow but steady stream is never cut). A read timeout before the response
// is a failed attempt, subject to the failover rules above; in the body it
// aborts the client connection. Write timeout: 10 s for each write to the
// upstream, fixed as in the seed.
//
// # Streaming
//
// Bodies stream in both directions through a fixed 32 KiB buffer, flushed to
// the client after each read, so memory does not grow with body size (the
// tests push 256 MiB each way and budget the allocations).
//
// A backend may answer before the client's body has all arrived (RFC 9112
// §9.3). The answer is relayed as it comes; if the body has not been read
// to its end by the time the answer's head goes out, the head says
// Connection: close and the client connection ends after it (RFC 9112
// §9.6), rather than the rest of the body being read to keep it: Go's
// server reading that rest while an attempt's writer may still be reading
// it too panics.
//
// # Upstream: net/http's framing, not its Transport
//
// The exchange with a backend (exchange.go) is written and read on the
// handler's goroutine with Request.Write and http.ReadResponse: the framing
// code Transport itself uses, so chunked bodies with trailers, 1xx
// responses and response parsing hardened against smuggling are
// net/http's. What Transport adds around that (a dialing goroutine, a read
// loop and a write loop per connection, with channel hand-offs) was most
// of the CPU a one-request connection cost, and a good share of a pooled
// one's (BENCHMARKS.md). The exchange keeps what the proxy relies on: the
// httptrace hooks, cancellation with the client's request, Expect:
// 100-continue held for a second at most, a bound on 1xx responses,
// Transport's header checks, and a request body written from its own
// goroutine so that an early response is heard.
//
// WithPooledUpstream adds a small idle list per backend (idle.go): a
// connection goes back when its response body ends, is checked with a
// read that does not wait before it is reused, and is closed after
// PooledIdleTimeout. WithPooledUpstream says when a request is sent again
// on a new connection; that is the only retry below the proxy's failover.
//
// Both modes dial through a connection wrapper (byte count, per-read and
// per-write deadlines) and send no User-Agent of their own (a nil entry).
// In the seed's mode nothing retries below the proxy's failover, so the
// RoundTripper given to WithRoundTripper sees exactly one call per attempt.
package proxy
