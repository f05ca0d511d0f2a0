package fakebackend_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// TestThroughputAgainstNetHTTP compares the fake backend's default echo with
// a bare net/http hello-world server, in the same run, with the same load
// generator (vegeta, keep-alive, bounded in time; bodies are drained, not
// kept, so that the client's cost does not depend on the body's size). It is a measurement, not a
// gate on a shared machine: set PROXYSPEC_BENCH=1 to run it, -v to see the
// figures. It fails only if either server drops requests, keep-alive did not
// hold, or the median ratio falls under PROXYSPEC_BENCH_MIN (unset: no
// floor).
func TestThroughputAgainstNetHTTP(t *testing.T) {
	if os.Getenv("PROXYSPEC_BENCH") == "" {
		t.Skip("set PROXYSPEC_BENCH=1 to measure throughput")
	}
	const (
		rounds = 8
		each   = 500 * time.Millisecond
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

	var total [2]float64
	ratios := make([]float64, 0, rounds)
	targets := [2]string{fb.URL() + "/echo", "http://" + ln.Addr().String() + "/hello"}
	// Short rounds, interleaved, so that load from elsewhere on the machine
	// hits both servers alike; the median of the per-round ratios resists
	// the rounds it hit hardest.
	for range rounds {
		var rate [2]float64
		for i, url := range targets {
			rate[i] = attack(t, url, each, conns)
			total[i] += rate[i] / rounds
			if i == 0 {
				checkKeptAlive(t, fb, conns)
			}
		}
		ratios = append(ratios, rate[0]/rate[1])
	}
	slices.Sort(ratios)
	ratio := (ratios[rounds/2-1] + ratios[rounds/2]) / 2
	t.Logf("fakebackend %.0f req/s, net/http hello %.0f req/s: ratio of means %.2f, median ratio %.2f (rounds %.2f; %d conns, %d×%v each)",
		total[0], total[1], total[0]/total[1], ratio, ratios, conns, rounds, each)
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

// checkKeptAlive checks that a handful of connections carried the attack
// and that the backend ended none, then drops the records, as a test suite
// would between specs.
func checkKeptAlive(t *testing.T, fb *fakebackend.Server, conns int) {
	t.Helper()
	st, _ := fb.Stats(ctx(t))
	cs, _ := fb.Conns(ctx(t))
	for _, c := range cs {
		if c.ClosedBy == "backend" {
			t.Fatalf("backend closed a connection: %+v", c)
		}
	}
	if st.Connections > 2*conns || st.Requests < 100 {
		t.Fatalf("fake backend after the attack: %+v, conns %+v", st, cs)
	}
	fb.Reset(ctx(t))
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
