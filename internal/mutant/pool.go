package mutant

import (
	"fmt"
	"net/http"
	"sync"
)

// pooled turns the reference's one-connection-per-request transport into a
// pooling one: same dialer (so the same timeouts and byte counting), keep-
// alives on, and requests without Connection: close.
func pooled() parts {
	var (
		mu   sync.Mutex
		pool *http.Transport
	)
	return parts{
		transport: func(next http.RoundTripper) http.RoundTripper {
			base, ok := next.(*http.Transport)
			if !ok {
				panic(fmt.Sprintf("mutant keep-alive-upstream: the reference's transport is a %T, not an *http.Transport", next))
			}
			t := base.Clone()
			t.DisableKeepAlives = false
			mu.Lock()
			pool = t
			mu.Unlock()
			return roundTripFunc(func(out *http.Request) (*http.Response, error) {
				out = out.Clone(out.Context())
				out.Close = false
				return t.RoundTrip(out)
			})
		},
		stop: func() {
			mu.Lock()
			defer mu.Unlock()
			if pool != nil {
				pool.CloseIdleConnections()
			}
		},
	}
}
