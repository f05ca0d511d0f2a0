package fakebackend_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// TestThroughputAgainstNetHTTP compares the fake backend's default echo with
// a bare net/http hello-world server, in the same run, with the same load
// generator (vegeta, keep-alive, bounded in time; bodies are drained, not
// kept, so that the client's cost does not depend on the body's size). It is a measurement, not a
// gate on a shared machine: set PROXYSPEC_BENCH=1 to run it, -v to see the
// figures. It fails only if either server drops requests or the ratio falls
// under PROXYSPEC_BENCH_MIN (unset: no floor).
func TestThroughputAgainstNetHTTP(t *testing.T) {
	if os.Getenv("PROXYSPEC_BENCH") == "" {
		t.Skip("set PROXYSPEC_BENCH=1 to measure throughput")
	}
	const (
		rounds = 2
		each   = 2 * time.Second
		conns  = 8
	)
	fb := start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hello := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("hello, world\n"))
	})}
	go hello.Serve(ln)
	defer hello.Close()

	var rate [2]float64
	targets := [2]string{fb.URL() + "/echo", "http://" + ln.Addr().String() + "/hello"}
	// Interleave the rounds so that load from elsewhere on the machine hits
	// both servers alike.
	for range rounds {
		for i, url := range targets {
			rate[i] += attack(t, url, each, conns) / rounds
			if i == 0 {
				// Keep-alive held: a handful of connections carried it all.
				if st, _ := fb.Stats(ctx(t)); st.Connections > conns || st.Requests < 1000 {
					t.Fatalf("fake backend stats after the attack: %+v", st)
				}
				fb.Reset(ctx(t)) // drop the records, as a test suite would between specs
			}
		}
	}
	ratio := rate[0] / rate[1]
	t.Logf("fakebackend %.0f req/s, net/http hello %.0f req/s, ratio %.2f (%d conns, %d×%v each)",
		rate[0], rate[1], ratio, conns, rounds, each)
	if v := os.Getenv("PROXYSPEC_BENCH_MIN"); v != "" {
		var min float64
		if _, err := fmt.Sscan(v, &min); err != nil {
			t.Fatalf("PROXYSPEC_BENCH_MIN=%q: %v", v, err)
		}
		if ratio < min {
			t.Fatalf("ratio %.2f under %.2f", ratio, min)
		}
	}
}

// attack loads url at the highest rate conns connections sustain for d and
// returns the rate of successful requests.
func attack(t *testing.T, url string, d time.Duration, conns int) float64 {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	a := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: tr, Timeout: patience}),
		vegeta.KeepAlive(true), vegeta.MaxBody(0), vegeta.Workers(uint64(conns)), vegeta.MaxWorkers(uint64(conns)))
	var m vegeta.Metrics
	for res := range a.Attack(vegeta.NewStaticTargeter(vegeta.Target{Method: "GET", URL: url}), vegeta.ConstantPacer{}, d, url) {
		m.Add(res)
	}
	m.Close()
	if m.Success != 1 {
		t.Fatalf("%s: success %.3f, errors %v", url, m.Success, m.Errors)
	}
	return m.Throughput
}
