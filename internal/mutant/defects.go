package mutant

import (
	"errors"
	"net/http"
	"net/textproto"
	"sync/atomic"
)

// errNoFailover is what no-failover's attempts after the first fail with.
var errNoFailover = errors.New("mutant: no failover after a failed attempt")

// framing fields are left alone by no-response-stripping: relaying them
// would not leak a field but break the response's framing, a different
// defect.
func framing(name string) bool {
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "Content-Length", "Transfer-Encoding", "Trailer":
		return true
	}
	return false
}

// hideAbort swallows the panic with which the reference cuts the client's
// connection when its backend fails mid-body, so the server ends the
// response normally: a chunked body gets its last chunk.
func hideAbort(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
		}()
		next.ServeHTTP(w, r)
	})
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
