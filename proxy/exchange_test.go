package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/iotest"
	"time"
)

// TestRequestBodyIntactInPieces sends bodies that the client's side hands
// over in pieces of every size, with and without a length, and checks the
// backend got every byte in order. The pieces are what shows a copy that
// reuses or reorders a buffer: a body of zeros or one read in full would
// hide it.
func TestRequestBodyIntactInPieces(t *testing.T) {
	body := make([]byte, 40<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(body)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil || !bytes.Equal(h.Sum(nil), want[:]) {
			http.Error(w, "body differs", http.StatusBadRequest)
			t.Errorf("backend got %d bytes (err %v), not the %d sent", n, err, len(body))
		}
	}))
	t.Cleanup(back.Close)
	p := newProxy(t, []string{back.URL})

	readers := map[string]func() io.Reader{
		"one byte":   func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body)) },
		"half":       func() io.Reader { return iotest.HalfReader(bytes.NewReader(body)) },
		"odd pieces": func() io.Reader { return &pieces{src: bytes.NewReader(body), rng: rand.New(rand.NewPCG(3, 4))} },
	}
	for name, r := range readers {
		for _, length := range []int64{int64(len(body)), -1} {
			req := httptest.NewRequest(http.MethodPost, "/up", nil)
			req.Body, req.ContentLength = io.NopCloser(r()), length
			if length < 0 {
				req.TransferEncoding = []string{"chunked"}
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Errorf("%s, length %d: status %d", name, length, rec.Code)
			}
		}
	}
}

// pieces reads its source in pieces of random sizes up to 5000 bytes.
type pieces struct {
	src io.Reader
	rng *rand.Rand
}

func (p *pieces) Read(b []byte) (int, error) {
	n := 1 + p.rng.IntN(5000)
	return p.src.Read(b[:min(n, len(b))])
}

// TestHeadNotHeldForSlowBody: a backend that sends its head and the start
// of its body, then waits, must not keep the client from the status. The
// backend here waits until the client has read the head, so a proxy that
// held the head back for more body would never get it there.
func TestHeadNotHeldForSlowBody(t *testing.T) {
	for name, start := range map[string]string{
		"length":  "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234",
		"chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n",
		"no body": "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			gotHead := make(chan struct{})
			back := startRaw(t, func(c net.Conn, _ seen) {
				io.WriteString(c, start)
				select {
				case <-gotHead:
				case <-time.After(10 * time.Second):
				}
			})
			p := newProxy(t, []string{back.url()})
			c, err := net.Dial("tcp", hostOf(t, serve(t, p)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			close(gotHead)
			if err != nil {
				t.Fatalf("no head while the backend held the rest of its body: %v", err)
			}
			res.Body.Close()
		})
	}
}
