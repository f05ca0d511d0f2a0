package mutant

import (
	"net/http"
	"strconv"
)

// leakInBody is error-detail-in-body: the proxy's own 502, sent when no
// backend answered, carries the last attempt's error after its text, the
// backend's address and port included, as many proxies' error pages do.
func leakInBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&leakWriter{ResponseWriter: w, x: exchangeOf(r.Context())}, r)
	})
}

type leakWriter struct {
	http.ResponseWriter
	x      *exchange
	detail string // what to add to the body; "" when nothing is leaked
	wrote  bool
}

func (w *leakWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		w.x.mu.Lock()
		if code == http.StatusBadGateway && w.x.upstream == nil && w.x.err != nil {
			w.detail = "\n" + w.x.err.Error()
		}
		w.x.mu.Unlock()
		if w.detail != "" {
			if n, err := strconv.Atoi(w.Header().Get("Content-Length")); err == nil {
				w.Header().Set("Content-Length", strconv.Itoa(n+len(w.detail)))
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write adds the detail after the proxy's one write of its error body.
func (w *leakWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	if err == nil && w.detail != "" {
		_, err = w.ResponseWriter.Write([]byte(w.detail))
		w.detail = ""
	}
	return n, err
}

func (w *leakWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
