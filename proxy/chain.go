package proxy

import "net/http"

// Chain composes middleware so that the first listed runs first: it is the
// outermost wrapper and sees every request before the others, as in the seed
// where a rate limiter placed before the proxy rejects requests that never
// reach a backend.
//
//	h := proxy.Chain(limiter.Wrap, p.Wrap)(app)
func Chain(mws ...func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			h = mws[i](h)
		}
		return h
	}
}
