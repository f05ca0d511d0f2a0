package mutant

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/proxyspec/proxyspec/conformance"
)

// replayed is post-replayed: it keeps a copy of every non-idempotent
// request's body as the proxy reads it, and when an attempt fails, whether
// or not the backend got the request, its transport sends the request again
// to the next backends in the list itself. The proxy sees one attempt that
// succeeded, so its own rule (RFC 9110 §9.2.2: never repeat a request that
// may have been acted upon) never gets a say.
func replayed(t conformance.Topology) parts {
	addrs := make([]string, len(t.Backends))
	for i, b := range t.Backends {
		addrs[i] = net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
	}
	return parts{
		handler: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !idempotent(r.Method) && r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
					rec := &recorder{src: r.Body}
					x := exchangeOf(r.Context())
					x.mu.Lock()
					x.body = rec
					x.mu.Unlock()
					r.Body = rec
				}
				next.ServeHTTP(w, r)
			})
		},
		transport: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(out *http.Request) (*http.Response, error) {
				res, err := next.RoundTrip(out)
				ctx := out.Context()
				if err == nil || idempotent(out.Method) || ctx.Err() != nil {
					return res, err
				}
				at := slices.Index(addrs, out.URL.Host)
				x := exchangeOf(ctx)
				for i := 1; at >= 0 && i < len(addrs); i++ {
					body, ok := x.replayBody(out.ContentLength)
					if !ok {
						break
					}
					again := out.Clone(ctx)
					again.URL.Host = addrs[(at+i)%len(addrs)]
					again.Host = again.URL.Host
					again.Body, again.GetBody = body, nil
					if res, err = next.RoundTrip(again); err == nil {
						return res, nil
					}
				}
				return nil, err
			})
		},
	}
}

// replayBody returns a fresh copy of the request body, if the first attempt
// read all of it: nil for a request without one.
func (x *exchange) replayBody(length int64) (io.ReadCloser, bool) {
	x.mu.Lock()
	rec := x.body
	x.mu.Unlock()
	if rec == nil {
		return nil, true
	}
	b, ok := rec.complete(length)
	if !ok {
		return nil, false
	}
	return io.NopCloser(bytes.NewReader(b)), true
}

// recorder keeps what is read through it.
type recorder struct {
	src io.ReadCloser
	mu  sync.Mutex
	buf bytes.Buffer
	eof bool
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.src.Read(p)
	r.mu.Lock()
	r.buf.Write(p[:n])
	if err == io.EOF {
		r.eof = true
	}
	r.mu.Unlock()
	return n, err
}

func (r *recorder) Close() error { return r.src.Close() }

// complete returns the body read so far if it is the whole body: the
// declared length of it, or everything up to the end of a chunked one.
func (r *recorder) complete(length int64) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.eof && (length < 0 || int64(r.buf.Len()) < length) {
		return nil, false
	}
	return bytes.Clone(r.buf.Bytes()), true
}

// idempotent is RFC 9110 §9.2.2's list, as the reference uses it.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// untouched reports whether nothing has been read through r yet.
func (r *recorder) untouched() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Len() == 0 && !r.eof
}
