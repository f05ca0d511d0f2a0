package mutant

import "net/http"

// editResponse wraps the proxy's ResponseWriter so that header can change
// the status and header of each response the proxy writes, the 1xx ones
// included, just before they go out. Returning 0 drops that response
// (only meaningful for a 1xx).
func editResponse(header func(code int, h http.Header, x *exchange) int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&writer{ResponseWriter: w, edit: header, x: exchangeOf(r.Context())}, r)
		})
	}
}

type writer struct {
	http.ResponseWriter
	edit  func(code int, h http.Header, x *exchange) int
	x     *exchange
	wrote bool
}

func (w *writer) WriteHeader(code int) {
	if w.wrote {
		w.ResponseWriter.WriteHeader(code) // let the server complain as usual
		return
	}
	if code >= 200 {
		w.wrote = true
	}
	if code = w.edit(code, w.Header(), w.x); code != 0 {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the server's writer, so the
// proxy's flushes and deadlines work through the wrapper.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
