package proxy

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/iotest"
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
