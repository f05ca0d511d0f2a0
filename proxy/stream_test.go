package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// zeros is an endless body that costs nothing to produce.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { return len(p), nil }

// bodySize is 256 MiB by default, 1 GiB with PROXYSPEC_BIG_BODY=1, and small
// under -short or the race detector, which slows copying tenfold.
func bodySize() int64 {
	switch {
	case os.Getenv("PROXYSPEC_BIG_BODY") != "":
		return 1 << 30
	case testing.Short() || raceEnabled:
		return 32 << 20
	}
	return 256 << 20
}

// TestBodiesStream proxies a large body each way and checks that what the
// process allocated meanwhile is a small fraction of the body: a proxy that
// buffered the body would allocate at least its size.
func TestBodiesStream(t *testing.T) {
	size := bodySize()
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				t.Errorf("backend reading upload: %v", err)
			}
			io.WriteString(w, strconv.FormatInt(n, 10))
			return
		}
		// No Content-Length: the response is chunked on both hops.
		io.CopyN(w, zeros{}, size)
	}))
	t.Cleanup(back.Close)
	front := serve(t, newProxy(t, []string{back.URL}))
	budget := uint64(size / 16)

	allocated := measure(t, func() {
		req := httptestRequest(t, http.MethodPost, front+"/up", io.LimitReader(zeros{}, size))
		req.ContentLength = -1 // chunked upload
		res, body := do(t, req)
		if res.StatusCode != http.StatusOK || body != strconv.FormatInt(size, 10) {
			t.Fatalf("upload: %d, backend counted %s of %d bytes", res.StatusCode, body, size)
		}
	})
	if allocated > budget {
		t.Errorf("uploading %d MiB allocated %d MiB, budget %d MiB", size>>20, allocated>>20, budget>>20)
	}
	t.Logf("upload of %d MiB allocated %d KiB", size>>20, allocated>>10)

	allocated = measure(t, func() {
		res, err := client().Get(front + "/down")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		n, err := io.Copy(io.Discard, res.Body)
		if err != nil || n != size {
			t.Fatalf("download: %d of %d bytes, %v", n, size, err)
		}
	})
	if allocated > budget {
		t.Errorf("downloading %d MiB allocated %d MiB, budget %d MiB", size>>20, allocated>>20, budget>>20)
	}
	t.Logf("download of %d MiB allocated %d KiB", size>>20, allocated>>10)
}

// measure returns the bytes allocated by the whole process while f ran:
// client, proxy and backend together.
func measure(t *testing.T, f func()) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func BenchmarkProxyBody1MiB(b *testing.B) {
	const size = 1 << 20
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(w, zeros{}, size)
	}))
	defer back.Close()
	p, err := New([]string{back.URL}, WithLogger(discard()))
	if err != nil {
		b.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	cl := client()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		res, err := cl.Get(front.URL)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}
