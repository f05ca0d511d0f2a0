package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkProxyGet is one small GET through the proxy and back, client to
// backend on loopback, in both upstream modes: the difference is the cost
// of a new upstream connection per request (connect, close, the
// transport's two goroutines per connection).
func BenchmarkProxyGet(b *testing.B) {
	for _, m := range []struct {
		name string
		opts []Option
	}{
		{"seed", nil},
		{"pooled", []Option{WithPooledUpstream()}},
	} {
		b.Run(m.name, func(b *testing.B) {
			back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "hello, world\n")
			}))
			defer back.Close()
			p, err := New([]string{back.URL}, append(m.opts, WithLogger(discard()))...)
			if err != nil {
				b.Fatal(err)
			}
			defer p.CloseIdleConnections()
			front := httptest.NewServer(p)
			defer front.Close()
			cl := client()
			defer cl.CloseIdleConnections()
			b.ReportAllocs()
			for b.Loop() {
				res, err := cl.Get(front.URL + "/x")
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("status %d", res.StatusCode)
				}
			}
		})
	}
}
