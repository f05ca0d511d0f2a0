package conformance

import (
	"sync"
)

// outputLimit bounds what is kept of a subject's output.
const outputLimit = 64 << 10

// tail is an io.Writer that keeps the last limit bytes written, for a
// subject's output: the end of a log is where the reason for a failure is.
type tail struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped bool
}

func newTail(limit int) *tail { return &tail{limit: limit} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.limit {
		p = p[len(p)-t.limit:]
		t.buf = t.buf[:0]
		t.dropped = true
	} else if over := len(t.buf) + len(p) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.dropped = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped {
		return "…(earlier output dropped)\n" + string(t.buf)
	}
	return string(t.buf)
}
