package mutant

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/proxy"
)

// errNoFailover is what no-failover's attempts after the first fail with.
var errNoFailover = errors.New("mutant: no failover after a failed attempt")

// framing fields are left alone by no-response-stripping: relaying them
// would not leak a field but break the response's framing, a different
// defect (transfer-encoding-relayed). Trailer does not frame a body sent
// with a Content-Length: it is relayed.
func framing(name string) bool {
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "Content-Length", "Transfer-Encoding":
		return true
	}
	return false
}

// hideAbort catches the panic with which the reference cuts the client's
// connection when its backend fails mid-body, and ends the response the
// way a complete one ends: a chunked body gets its last chunk, then the
// connection closes. A body with a Content-Length cannot be passed off as
// complete, so it is cut as the reference does.
func hideAbort(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v != http.ErrAbortHandler {
				panic(v)
			}
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			defer conn.Close()
			if chunked(w.Header(), r) {
				buf.WriteString("0\r\n\r\n")
				buf.Flush()
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// chunked reports whether net/http frames the response with chunked
// coding: an HTTP/1.1 response without a Content-Length. (A body without
// either framing is delimited by the close, and looks whole anyway.)
func chunked(h http.Header, r *http.Request) bool {
	return r.ProtoAtLeast(1, 1) && h.Get("Content-Length") == ""
}

// skewed favours the first backend: even-numbered requests start there,
// odd-numbered ones go round the list. Every backend still gets traffic,
// so only a check of the distribution notices.
type skewed struct{ n atomic.Uint64 }

func (s *skewed) Next(_ *http.Request, n int) int {
	i := s.n.Add(1) - 1
	if i%2 == 0 {
		return 0
	}
	return int((i / 2) % uint64(n))
}

// totalDeadline is read-timeout-total: each attempt, from its connect to
// the end of the response body, gets the read timeout as one deadline, so a
// slow body whose every gap is short is still cut off.
func totalDeadline(t conformance.Topology) parts {
	return parts{transport: func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(out *http.Request) (*http.Response, error) {
			ctx, cancel := context.WithTimeout(out.Context(), t.ReadTimeout)
			res, err := next.RoundTrip(out.WithContext(ctx))
			if err != nil {
				cancel()
				return nil, err
			}
			res.Body = &cancelBody{ReadCloser: res.Body, cancel: cancel}
			return res, nil
		})
	}}
}

// cancelBody ends its attempt's context once the proxy is done with it.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// naivePrefix is prefix-naive: the reference proxies everything, behind a
// check that compares the raw path with the prefix as a string, so /apix is
// under /api and so is /api/../admin.
func naivePrefix(t conformance.Topology) parts {
	prefix := strings.TrimRight(t.PathPrefix, "/")
	return parts{
		opts: []proxy.Option{proxy.WithPathPrefix("")},
		handler: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasPrefix(r.URL.EscapedPath(), prefix) {
					http.NotFound(w, r)
					return
				}
				next.ServeHTTP(w, r)
			})
		},
	}
}
