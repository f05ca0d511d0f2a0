package bench

import (
	"context"
	"net/http"
	"slices"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Load is how hard the client pushes.
type Load struct {
	// Rate is the request rate per second; 0 sends as fast as Workers
	// connections allow (a closed loop: each sends its next request when
	// the previous one has been answered).
	Rate int
	// Workers is the number of concurrent requests, each on its own kept
	// alive client connection; with a Rate, the most vegeta may use.
	Workers int
}

// sample is what one attack measured.
type sample struct {
	requests  int
	errors    int
	errSample []string        // a few distinct error messages
	latencies []time.Duration // of the successful requests
	elapsed   time.Duration
}

// maxErrSample bounds the distinct errors a sample keeps.
const maxErrSample = 3

// attack loads urls, in turn, for d, and measures. A response is a success
// when it is a 200 whose body was read whole.
func attack(ctx context.Context, urls []string, d time.Duration, l Load) sample {
	tr := &http.Transport{
		Proxy:               nil,
		DisableCompression:  true,
		MaxIdleConnsPerHost: l.Workers,
		MaxConnsPerHost:     l.Workers,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	workers := uint64(l.Workers)
	a := vegeta.NewAttacker(
		vegeta.Client(&http.Client{Transport: tr, Timeout: 30 * time.Second}),
		vegeta.Workers(workers), vegeta.MaxWorkers(workers),
		vegeta.MaxBody(0), vegeta.Redirects(vegeta.NoFollow))
	targets := make([]vegeta.Target, len(urls))
	for i, u := range urls {
		targets[i] = vegeta.Target{Method: http.MethodGet, URL: u}
	}
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()

	s := sample{latencies: make([]time.Duration, 0, 1<<16)}
	start := time.Now()
	var end time.Time
	for res := range a.Attack(vegeta.NewStaticTargeter(targets...), vegeta.ConstantPacer{Freq: l.Rate, Per: time.Second}, d, "bench") {
		s.requests++
		if e := res.End(); e.After(end) {
			end = e
		}
		if res.Error != "" || res.Code != http.StatusOK {
			s.errors++
			msg := res.Error
			if msg == "" {
				msg = http.StatusText(int(res.Code))
			}
			if len(s.errSample) < maxErrSample && !slices.Contains(s.errSample, msg) {
				s.errSample = append(s.errSample, msg)
			}
			continue
		}
		s.latencies = append(s.latencies, res.Latency)
	}
	if !end.IsZero() {
		s.elapsed = end.Sub(start)
	}
	return s
}

// quantile returns the q-quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
