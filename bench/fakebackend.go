package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// FakeBackendResult compares the fake backend with a bare net/http
// hello-world server, both in this process, loaded by the same client.
type FakeBackendResult struct {
	FakeBackendRate float64 `json:"fakebackend_rate"`
	NetHTTPRate     float64 `json:"nethttp_rate"`
	// Ratio is the median of the per-round ratios fake/net/http: a round
	// hit by load from elsewhere moves it less than the means.
	Ratio  float64   `json:"ratio"`
	Rounds []float64 `json:"round_ratios"`
	Note   string    `json:"note"`
}

// compareFakeBackend measures the fake backend's default behaviour (Echo: a
// JSON echo of the request, as the suite's specs get it) against net/http
// answering "hello, world\n", in short interleaved rounds.
func compareFakeBackend(ctx context.Context, c Config) (*FakeBackendResult, error) {
	fb, err := fakebackend.Start("bench")
	if err != nil {
		return nil, err
	}
	defer fb.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hello := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(Hello))
	})}
	go hello.Serve(ln)
	defer hello.Close()

	rounds := 2 * c.Rounds
	each := max(c.Duration/2, 200*time.Millisecond)
	load := Load{Workers: c.Load.Workers} // as fast as they go
	urls := [2][]string{{fb.URL() + "/echo"}, {"http://" + ln.Addr().String() + "/hello"}}
	r := &FakeBackendResult{Note: "fake backend default Echo behaviour vs net/http hello-world, in process, vegeta keep-alive, median of per-round ratios"}
	var total [2]float64
	for range rounds {
		var rt [2]float64
		for i, u := range urls {
			s := attack(ctx, u, each, load)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if s.errors > 0 {
				return nil, fmt.Errorf("%s: %d errors (%v)", u[0], s.errors, s.errSample)
			}
			rt[i] = rate(len(s.latencies), s.elapsed)
			total[i] += rt[i] / float64(rounds)
		}
		// The fake backend records every request: forget them between
		// rounds, as the suite does between specs.
		fb.Reset(ctx)
		r.Rounds = append(r.Rounds, rt[0]/rt[1])
	}
	r.FakeBackendRate, r.NetHTTPRate = total[0], total[1]
	sorted := slices.Sorted(slices.Values(r.Rounds))
	n := len(sorted)
	r.Ratio = (sorted[(n-1)/2] + sorted[n/2]) / 2
	return r, nil
}
