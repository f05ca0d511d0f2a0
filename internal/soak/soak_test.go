package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
	"github.com/proxyspec/proxyspec/proxy"
)

// The proxy's timeouts in the soak. Every fault that stalls stays well
// under the read timeout, so that a stall is a slow answer, not a failure.
const (
	connectTimeout = 500 * time.Millisecond
	readTimeout    = time.Second
)

const (
	numBackends = 3
	numClients  = 16
	// roundSize requests run between two checkpoints; the backends forget
	// their records after each round, so that the soak measures the proxy,
	// not the growth of the backends' history.
	roundSize = 500
)

// Tolerances on growth between the first checkpoint (after a warm-up
// round) and the last.
const (
	maxGoroutineGrowth = 10
	maxFDGrowth        = 10
	maxHeapGrowth      = 8 << 20
	maxRSSGrowth       = 32 << 20
)

// faultTag is the response header through which a backend tells the client
// how it answered: the proxy forwards it with the head, before any fault
// mid-body, so the client can judge its own outcome.
const faultTag = "X-Soak-Fault"

// idHeader carries each client request's unique id to the backends.
const idHeader = "X-Soak-Id"

// outcome is what a fault allows the client to see.
type outcome int

const (
	complete outcome = iota // the whole response, with the fault's tag
	aborted                 // the head with the tag, then the connection cut
	unseen                  // no byte reaches the client: the proxy fails over or answers 502
)

type fault struct {
	name   string
	weight int
	out    outcome
	b      func(*rand.Rand) fakebackend.Behaviour
}

func tagged(name string, b fakebackend.Behaviour) fakebackend.Behaviour {
	b.Header = append(b.Header, fakebackend.Field{Name: faultTag, Value: name})
	return b
}

// faults are drawn at random for every request a backend receives;
// refusals come on top, by switching a backend's listener off and on.
var faults = []fault{
	{"normal", 56, complete, func(*rand.Rand) fakebackend.Behaviour { return tagged("normal", fakebackend.Behaviour{}) }},
	{"delay", 8, complete, func(r *rand.Rand) fakebackend.Behaviour {
		d := time.Duration(20+r.IntN(280)) * time.Millisecond // < readTimeout/3
		return tagged("delay", fakebackend.Behaviour{Delay: fakebackend.D(d)})
	}},
	{"slow-body", 8, complete, func(*rand.Rand) fakebackend.Behaviour {
		return tagged("slow-body", fakebackend.Behaviour{SlowBody: &fakebackend.Slow{Bytes: 200, Interval: fakebackend.D(10 * time.Millisecond)}})
	}},
	{"reset", 8, unseen, func(*rand.Rand) fakebackend.Behaviour {
		return fakebackend.Behaviour{Fault: fakebackend.ResetBeforeResponse}
	}},
	{"close", 6, unseen, func(*rand.Rand) fakebackend.Behaviour {
		return fakebackend.Behaviour{Fault: fakebackend.CloseBeforeResponse}
	}},
	{"close-mid-body", 8, aborted, func(*rand.Rand) fakebackend.Behaviour {
		return tagged("close-mid-body", fakebackend.Behaviour{Fault: fakebackend.CloseMidBody})
	}},
	{"reset-mid-body", 6, aborted, func(*rand.Rand) fakebackend.Behaviour {
		return tagged("reset-mid-body", fakebackend.Behaviour{Fault: fakebackend.ResetMidBody})
	}},
}

func pick(r *rand.Rand) fault {
	total := 0
	for _, f := range faults {
		total += f.weight
	}
	n := r.IntN(total)
	for _, f := range faults {
		if n < f.weight {
			return f
		}
		n -= f.weight
	}
	panic("unreachable")
}

func outcomeOf(tag string) (outcome, bool) {
	for _, f := range faults {
		if f.name == tag && f.out != unseen {
			return f.out, true
		}
	}
	return 0, false
}

// bounds reads the soak's bounds from the environment.
func bounds(t *testing.T) (int, time.Duration) {
	t.Helper()
	n, d := 3000, 20*time.Second
	if v := os.Getenv("PROXYSPEC_SOAK_REQUESTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("PROXYSPEC_SOAK_REQUESTS=%q: want a positive number", v)
		}
	}
	if v := os.Getenv("PROXYSPEC_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("PROXYSPEC_SOAK_DURATION=%q: want a positive Go duration", v)
		}
	}
	return n, d
}

// TestSoak drives the reference proxy with concurrent GETs and POSTs in
// rounds, against backends failing at random, and checks after every round
// that each request got exactly one answer consistent with what its backend
// did, that no POST reached a backend twice, and that no backend saw
// malformed HTTP; at the end, that goroutines, descriptors and memory did
// not grow beyond the stated tolerances.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: skipped with -short")
	}
	total, budget := bounds(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("soak: up to %d requests or %v, seed %d", total, budget, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	s := newSoak(t)
	var first, last sample
	var tally sync.Map // outcome name -> *atomic.Int64
	start := time.Now()
	sent, rounds := 0, 0
	for sent < total && time.Since(start) < budget {
		n := min(roundSize, total-sent)
		s.round(t, rng, n, &tally)
		sent += n
		rounds++
		m := s.settle(first, rounds == 1)
		if rounds == 1 {
			first = m
		}
		last = m
	}
	elapsed := time.Since(start)
	t.Logf("soak: %d requests in %d rounds in %v (%.0f/s)", sent, rounds, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds())
	var names []string
	tally.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
	slices.Sort(names)
	for _, k := range names {
		v, _ := tally.Load(k)
		t.Logf("soak:   %-28s %6d", k, v.(*atomic.Int64).Load())
	}
	t.Logf("soak: after round 1: %v", first)
	t.Logf("soak: after round %d: %v", rounds, last)
	if rounds < 2 {
		return
	}
	if g := last.goroutines - first.goroutines; g > maxGoroutineGrowth {
		t.Errorf("goroutines grew by %d (%d -> %d), tolerance %d", g, first.goroutines, last.goroutines, maxGoroutineGrowth)
	}
	if first.fds >= 0 {
		if g := last.fds - first.fds; g > maxFDGrowth {
			t.Errorf("open descriptors grew by %d (%d -> %d), tolerance %d", g, first.fds, last.fds, maxFDGrowth)
		}
	}
	if g := int64(last.heap) - int64(first.heap); g > maxHeapGrowth {
		t.Errorf("heap in use grew by %d KiB, tolerance %d KiB", g>>10, maxHeapGrowth>>10)
	}
	if first.rss > 0 {
		if g := int64(last.rss) - int64(first.rss); g > maxRSSGrowth {
			t.Errorf("RSS grew by %d KiB, tolerance %d KiB", g>>10, maxRSSGrowth>>10)
		}
	}
}

// soak is the system under load: fake backends, the reference proxy on a
// loopback server, and a client.
type soak struct {
	backends []*fakebackend.Server
	url      string
	client   *http.Client
	nextID   atomic.Int64
}

func newSoak(t *testing.T) *soak {
	t.Helper()
	s := &soak{}
	var urls []string
	for i := range numBackends {
		b, err := fakebackend.Start(string(rune('a' + i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		s.backends = append(s.backends, b)
		urls = append(urls, b.URL())
	}
	logs := slog.New(slog.DiscardHandler)
	if path := os.Getenv("PROXYSPEC_SOAK_LOG"); path != "" {
		// The proxy's warnings (failed attempts, responses cut), to find
		// out why an outcome was wrong.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		logs = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	p, err := proxy.New(urls, proxy.WithConnectTimeout(connectTimeout), proxy.WithReadTimeout(readTimeout),
		proxy.WithLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	s.url = "http://" + ln.Addr().String()
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: numClients, DisableCompression: true}
	s.client = &http.Client{Transport: tr, Timeout: 10 * readTimeout}
	t.Cleanup(tr.CloseIdleConnections)
	return s
}

// round queues random faults on every backend, sends n requests from
// numClients concurrent clients while one backend at a time is switched to
// refuse connections now and then, and checks every outcome.
func (s *soak) round(t *testing.T, rng *rand.Rand, n int, tally *sync.Map) {
	t.Helper()
	ctx := context.Background()
	count := func(k string) {
		v, _ := tally.LoadOrStore(k, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	queued := make([][]string, len(s.backends))
	for i, b := range s.backends {
		// Failover sends a backend more than its share; what is left is
		// dropped by the Reset below.
		q := make([]fakebackend.Behaviour, 2*n/numBackends+16)
		for j := range q {
			f := pick(rng)
			q[j] = f.b(rng)
			queued[i] = append(queued[i], f.name)
		}
		if err := b.SetDefault(ctx, tagged("normal", fakebackend.Behaviour{})); err != nil {
			t.Fatal(err)
		}
		if err := b.Enqueue(ctx, q...); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		s.flip(rand.New(rand.NewPCG(rng.Uint64(), 2)), stop, count)
	}()

	type result struct {
		id, method string
		out        string // "200 <tag>", "aborted <tag>", "502"
		err        error
	}
	jobs := make(chan bool, n) // true: POST
	for range n {
		jobs <- rng.IntN(2) == 0
	}
	close(jobs)
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range numClients {
		wg.Go(func() {
			for post := range jobs {
				id := strconv.FormatInt(s.nextID.Add(1), 10)
				out, method, err := s.send(id, post)
				results <- result{id, method, out, err}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-flipped
	close(results)

	byID := map[string]result{}
	for r := range results {
		byID[r.id] = r
		if r.err != nil {
			t.Errorf("%s %s: %v", r.method, r.id, r.err)
			continue
		}
		count(r.method + " " + r.out)
	}
	// What the backends received: each request once at most if it is a
	// POST, once per backend at most otherwise, and never malformed.
	deliveries := map[string]int{}
	for i, b := range s.backends {
		reqs, err := b.Requests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each request took the next queued behaviour: which request took
		// which is a race, but the faults met are the first len(reqs).
		for _, name := range queued[i][:min(len(reqs), len(queued[i]))] {
			count("fault met: " + name)
		}
		for _, r := range reqs {
			deliveries[r.Get(idHeader)]++
			for _, v := range r.Violations {
				t.Errorf("backend %s got malformed HTTP for request %s: %s: %s", b.Name(), r.Get(idHeader), v.Rule, v.Detail)
			}
		}
		if err := b.Reset(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for id, k := range deliveries {
		r, ok := byID[id]
		switch {
		case !ok:
			t.Errorf("backends got request %q, which no client of this round sent", id)
		case r.method == http.MethodPost && k > 1:
			t.Errorf("POST %s reached the backends %d times", id, k)
			count("POST delivered twice")
		case k > numBackends:
			t.Errorf("%s %s reached the backends %d times, more than one attempt per backend", r.method, id, k)
		}
	}
	for id, r := range byID {
		if r.err == nil && r.out != "502" && deliveries[id] == 0 {
			t.Errorf("%s %s was answered %q without reaching any backend", r.method, id, r.out)
		}
	}
}

// flip switches a random backend to refuse connections for a moment, again
// and again, until stop.
func (s *soak) flip(rng *rand.Rand, stop <-chan struct{}, count func(string)) {
	ctx := context.Background()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		b := s.backends[rng.IntN(len(s.backends))]
		if b.SetMode(ctx, fakebackend.Refuse) != nil {
			continue
		}
		count("refusal periods")
		select {
		case <-stop:
		case <-time.After(30 * time.Millisecond):
		}
		b.SetMode(ctx, fakebackend.Serve)
	}
}

// send sends one request and says what came back; an error is an outcome
// the faults do not allow.
func (s *soak) send(id string, post bool) (out, method string, err error) {
	method = http.MethodGet
	var body io.Reader
	payload := []byte("payload of request " + id)
	if post {
		method = http.MethodPost
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequest(method, s.url+"/soak/"+id, body)
	if err != nil {
		return "", method, err
	}
	req.Header.Set(idHeader, id)
	if path := os.Getenv("PROXYSPEC_SOAK_STACKS"); path != "" {
		stall := time.AfterFunc(5*readTimeout, func() { dumpOnce(path) })
		defer stall.Stop()
	}
	res, err := s.client.Do(req)
	if err != nil {
		return "", method, fmt.Errorf("no response: %w", err)
	}
	defer res.Body.Close()
	got, readErr := io.ReadAll(res.Body)
	tag := res.Header.Get(faultTag)
	switch res.StatusCode {
	case http.StatusBadGateway:
		if readErr != nil || string(got) != "502 Bad Gateway" || tag != "" {
			return "", method, fmt.Errorf("502 with tag %q, body %q, read error %v", tag, got, readErr)
		}
		return "502", method, nil
	case http.StatusOK:
	default:
		return "", method, fmt.Errorf("status %d (tag %q)", res.StatusCode, tag)
	}
	want, ok := outcomeOf(tag)
	switch {
	case !ok:
		return "", method, fmt.Errorf("200 with unknown fault tag %q", tag)
	case want == aborted && readErr == nil:
		return "", method, fmt.Errorf("a body cut by the backend (%s) reached the client as complete (%d bytes)", tag, len(got))
	case want == aborted:
		return "aborted " + tag, method, nil
	case readErr != nil:
		return "", method, fmt.Errorf("body of a %s answer cut short: %w", tag, readErr)
	}
	var echo struct {
		Backend string              `json:"backend"`
		Conn    uint64              `json:"conn"`
		Seq     int                 `json:"seq"`
		Target  string              `json:"target"`
		Header  []fakebackend.Field `json:"header"`
		Body    string              `json:"body"`
	}
	if err := json.Unmarshal(got, &echo); err != nil {
		return "", method, fmt.Errorf("200 %s with a body that is not an echo (%q): %w", tag, got, err)
	}
	if v := fieldValue(echo.Header, idHeader); v != id || (post && echo.Body != string(payload)) {
		return "", method, fmt.Errorf("answered with the echo of another request (id %q, body %q; backend %s conn %d seq %d target %s; tag %s)",
			v, echo.Body, echo.Backend, echo.Conn, echo.Seq, echo.Target, tag)
	}
	return "200 " + tag, method, nil
}

func fieldValue(fs []fakebackend.Field, name string) string {
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// sample is the process's resource use at a checkpoint.
type sample struct {
	goroutines int
	fds        int    // -1 where /proc is missing
	rss, heap  uint64 // bytes; rss 0 where /proc is missing
}

func (m sample) String() string {
	return fmt.Sprintf("goroutines %d, open fds %d, RSS %d KiB, heap in use %d KiB", m.goroutines, m.fds, m.rss>>10, m.heap>>10)
}

func measure() sample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := sample{goroutines: runtime.NumGoroutine(), fds: -1, heap: ms.HeapInuse}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		m.fds = len(ents)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.rss = kb << 10
			}
		}
	}
	return m
}

// settle closes the client's idle connections and waits for the
// connections of the round to wind down (the backends wait up to a second
// for a peer's FIN after closing), then measures. The first checkpoint
// waits for the count to stop falling; later ones until it is back within
// tolerance of the first, for at most settleBound.
func (s *soak) settle(first sample, isFirst bool) sample {
	s.client.CloseIdleConnections()
	const settleBound = 5 * time.Second
	deadline := time.Now().Add(settleBound)
	prev := -1
	for {
		g := runtime.NumGoroutine()
		done := isFirst && g == prev || !isFirst && g-first.goroutines <= maxGoroutineGrowth/2
		if done || time.Now().After(deadline) {
			return measure()
		}
		prev = g
		time.Sleep(100 * time.Millisecond)
	}
}

var dumped sync.Once

// dumpOnce writes every goroutine's stack to path, once: a request stalled
// far beyond what the proxy's timeouts allow.
func dumpOnce(path string) {
	dumped.Do(func() {
		f, err := os.Create(path)
		if err != nil {
			return
		}
		defer f.Close()
		pprof.Lookup("goroutine").WriteTo(f, 2)
	})
}
