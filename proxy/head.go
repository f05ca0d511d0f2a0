package proxy

import (
	"bytes"
	"sync"
)

// connectionWatch keeps the Connection field values of the final response
// head read on a backend connection. net/http deletes the whole Connection
// field from a parsed response when it holds "close", which every backend
// answering our Connection: close sends: the other options, and with them
// the fields they name and a proxy must remove (RFC 9110 §7.6.1), would pass
// to the client unseen.
type connectionWatch struct {
	mu     sync.Mutex
	done   bool   // the final head has ended; the body is not looked at
	status bool   // the next line is a status line
	info   bool   // the current head is a 1xx other than 101
	line   []byte // the line being read
	values []string
}

// maxWatchedLine bounds the memory a hostile header line can take; longer
// lines are not Connection lines anyone sends, and net/http rejects heads
// over 1 MiB anyway.
const maxWatchedLine = 64 << 10

func newConnectionWatch() *connectionWatch { return &connectionWatch{status: true} }

// observe looks at bytes as the transport reads them.
func (w *connectionWatch) observe(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(p) > 0 && !w.done {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			return
		}
		w.add(p[:i])
		w.endLine(bytes.TrimSuffix(w.line, []byte("\r")))
		w.line = w.line[:0]
		p = p[i+1:]
	}
}

func (w *connectionWatch) add(p []byte) {
	if room := maxWatchedLine - len(w.line); room > 0 {
		w.line = append(w.line, p[:min(len(p), room)]...)
	}
}

func (w *connectionWatch) endLine(l []byte) {
	switch {
	case w.status:
		// "HTTP/1.1 103 Early Hints": a 1xx head is followed by another.
		w.status = false
		f := bytes.Fields(l)
		w.info = len(f) > 1 && len(f[1]) == 3 && f[1][0] == '1' && string(f[1]) != "101"
		w.values = w.values[:0]
	case len(l) == 0:
		w.done = !w.info
		w.status = w.info
	default:
		name, value, ok := bytes.Cut(l, []byte(":"))
		if ok && string(bytes.ToLower(name)) == "connection" {
			w.values = append(w.values, string(bytes.TrimSpace(value)))
		}
	}
}

// connection returns the Connection values of the final head, and whether
// that head has been read in full.
func (w *connectionWatch) connection() ([]string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.values...), w.done
}
