package main

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// bodyGapTimeout bounds each wait for the next bytes of a client's request
// body by gap (0: no bound). The proxy streams a body upstream as it
// arrives, so a client trickling one would otherwise hold a backend
// connection for as long as it likes (slowloris). The bound is per gap, not
// for the whole body as http.Server.ReadTimeout would be, so that a large
// upload on a slow but live link is never cut off. When it fires, the body
// read fails, the proxy abandons the upstream attempt and the server closes
// the connection.
func bodyGapTimeout(h http.Handler, gap time.Duration) http.Handler {
	if gap <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		b := &gapBody{ReadCloser: r.Body, rc: http.NewResponseController(w), gap: gap}
		r.Body = b
		defer b.finish()
		h.ServeHTTP(w, r)
	})
}

// gapBody sets the connection's read deadline before each read of the body.
// Once the body has ended it clears it: the server keeps reading in the
// background to notice a client that leaves, and that read must not time
// out while the backend takes its time to answer. A body that did not end
// keeps a deadline: after the handler the server reads what is left of it,
// and a stalled client must not hold it there. After the handler has
// returned the connection may serve the next request, whose deadlines are
// the server's own, so the body no longer touches them.
type gapBody struct {
	io.ReadCloser
	rc  *http.ResponseController
	gap time.Duration

	mu   sync.Mutex // the proxy's transport reads from its own goroutine
	over bool       // the body ended or the handler returned
}

func (b *gapBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.over {
		b.rc.SetReadDeadline(time.Now().Add(b.gap))
	}
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end(err == io.EOF)
	}
	return n, err
}

// finish runs when the handler returns.
func (b *gapBody) finish() { b.end(false) }

func (b *gapBody) end(complete bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over {
		return
	}
	b.over = true
	if complete {
		b.rc.SetReadDeadline(time.Time{})
	} else {
		b.rc.SetReadDeadline(time.Now().Add(b.gap))
	}
}
