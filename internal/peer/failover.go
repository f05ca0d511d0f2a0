package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"

	"github.com/proxyspec/proxyspec/conformance"
)

// Failover is HTTPUtil with the failover httputil.ReverseProxy lacks, added
// the way its API allows: as the Transport. The Director only sets the
// scheme, Host and Via; the RoundTripper picks the backend in turn and, when
// an attempt fails where a retry is safe, tries the next ones in order, each
// at most once, before the ErrorHandler's 502.
func Failover(t conformance.Topology) (http.Handler, error) {
	backends, err := parseBackends(t.Backends)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Director:     direct,
		Transport:    &failover{backends: backends, rt: transport(t)},
		ErrorHandler: badGateway,
	}
	return mount(t.PathPrefix, len(backends), rp), nil
}

// failover is a RoundTripper over several backends.
type failover struct {
	backends []*url.URL
	next     atomic.Uint64 // the round-robin counter, one step per request
	rt       http.RoundTripper
}

func (f *failover) RoundTrip(r *http.Request) (*http.Response, error) {
	n := uint64(len(f.backends))
	if n == 0 {
		return nil, errNoBackends
	}
	start := f.next.Add(1) - 1
	var body *sharedBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &sharedBody{ReadCloser: r.Body}
		defer r.Body.Close()
	}
	var errs []error
	for i := range n {
		b := f.backends[(start+i)%n]
		out := r.Clone(r.Context())
		out.URL.Host = b.Host
		if body != nil {
			out.Body = body
		}
		resp, err := f.rt.RoundTrip(out)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("backend %s: %w", b.Host, err))
		if r.Context().Err() != nil || !retriable(r.Method, err, body) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// retriable reports whether a request whose attempt failed with err may be
// sent to another backend. A failed dial sent nothing, so any request may
// go elsewhere, its body still whole. Once a request has left, only an
// idempotent one may be repeated (RFC 9110 §9.2.2), and only without a
// body: the Transport may still be reading a body after RoundTrip returned.
func retriable(method string, err error, body *sharedBody) bool {
	if body != nil && body.read.Load() {
		return false
	}
	if opErr, ok := errors.AsType[*net.OpError](err); ok && opErr.Op == "dial" {
		return true
	}
	return body == nil && idempotent(method)
}

// idempotent reports whether method is idempotent (RFC 9110 §9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// sharedBody is the client's request body shared by the attempts of one
// request. The Transport closes the body of a failed attempt, which must
// not end the client's body while none of it has left (RoundTrip closes it
// once at the end); read says whether any attempt began reading it.
type sharedBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *sharedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

func (b *sharedBody) Close() error { return nil }
