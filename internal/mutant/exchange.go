package mutant

import (
	"context"
	"net/http"
	"sync"
)

// exchange is what a mutant remembers of one client request, shared by its
// handler wrapper and its transport through the request context (the
// proxy's upstream requests derive their context from the client's).
type exchange struct {
	in   http.Header // the client's header as received, hop-by-hop fields included
	host string      // the client's Host
	te   []string    // the client's Transfer-Encoding, which net/http keeps out of in

	mu       sync.Mutex
	upstream http.Header // the last response a backend returned, before the proxy's rules
	// upstreamTE is that response's Transfer-Encoding, which net/http
	// keeps out of its header.
	upstreamTE []string
	failed     bool      // an upstream attempt failed
	err        error     // how the last failed attempt failed
	body       *recorder // the client's body as read so far (post-replayed only)
}

// attemptFailed reports whether an upstream attempt of x has failed.
func (x *exchange) attemptFailed() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.failed
}

type exchangeKey struct{}

// track puts a fresh exchange into every request's context.
func track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x := &exchange{in: r.Header.Clone(), host: r.Host, te: r.TransferEncoding}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
	})
}

// exchangeOf returns the exchange of the client request ctx derives from.
// The proxy only calls its transport from within a tracked request, so a
// missing exchange is a wiring bug.
func exchangeOf(ctx context.Context) *exchange {
	x, ok := ctx.Value(exchangeKey{}).(*exchange)
	if !ok {
		panic("mutant: upstream request outside a tracked client request")
	}
	return x
}

// record notes in the exchange what each attempt ended with: the response
// header as the backend sent it, or the failure.
func record(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(out *http.Request) (*http.Response, error) {
		res, err := next.RoundTrip(out)
		x := exchangeOf(out.Context())
		x.mu.Lock()
		defer x.mu.Unlock()
		if err != nil {
			x.failed, x.err = true, err
			return nil, err
		}
		x.upstream = res.Header.Clone()
		x.upstreamTE = res.TransferEncoding
		return res, nil
	})
}

// upstreamHeader returns the header of the response the proxy is relaying,
// nil when no backend answered.
func (x *exchange) upstreamHeader() http.Header {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.upstream
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
