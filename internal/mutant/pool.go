package mutant

import (
	"net/http"
	"sync"

	"github.com/proxyspec/proxyspec/proxy"
)

// pooled is the reference in its opt-in pooled mode, which keeps upstream
// connections open and sends requests without Connection: close: right
// for an RFC 9110 proxy, a defect against the seed. Stopping it closes the
// connections it keeps.
func pooled() parts {
	var (
		mu   sync.Mutex
		pool interface{ CloseIdleConnections() }
	)
	return parts{
		opts: []proxy.Option{proxy.WithPooledUpstream()},
		transport: func(next http.RoundTripper) http.RoundTripper {
			if c, ok := next.(interface{ CloseIdleConnections() }); ok {
				mu.Lock()
				pool = c
				mu.Unlock()
			}
			return next
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
