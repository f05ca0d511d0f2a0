package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Config is one bench run.
type Config struct {
	// Exe is the proxyspec binary: the Go proxies and the backends run as
	// its "bench serve" mode, the memory figures are of its "proxy" command.
	Exe string
	// Duration of each measured attack, after Warmup of the same load.
	Duration, Warmup time.Duration
	// Rounds: every implementation is measured once per round, in turn.
	Rounds int
	Load   Load
	// Only lists the implementations to run (ImplementationNames); empty
	// runs them all.
	Only []string
	// FakeBackend compares the fake backend with a bare net/http server.
	FakeBackend bool
	// Memory measures the reference proxy's peak RSS with 1 GiB bodies and
	// its RSS with IdleConns idle client connections.
	Memory    bool
	BodySize  int64
	IdleConns int
	// ProfileDir, when set, receives a CPU profile of each Go proxy.
	ProfileDir string
	// Progress gets a line per step; nil discards them.
	Progress io.Writer
}

// Report is the outcome of a run, as written to JSON.
type Report struct {
	Started     time.Time          `json:"started"`
	Host        Host               `json:"host"`
	Duration    time.Duration      `json:"duration_ns"`
	Warmup      time.Duration      `json:"warmup_ns"`
	Rounds      int                `json:"rounds"`
	Load        Load               `json:"load"`
	Backends    string             `json:"backends"`
	Results     []Result           `json:"results"`
	FakeBackend *FakeBackendResult `json:"fakebackend,omitempty"`
	Memory      *MemoryResult      `json:"memory,omitempty"`
}

// Host describes the machine the figures come from.
type Host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// Result is one implementation's figures over all rounds.
type Result struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Skipped     string   `json:"skipped,omitempty"`
	Requests    int      `json:"requests"`
	Errors      int      `json:"errors"`
	ErrorSample []string `json:"error_sample,omitempty"`
	// Rate is successful responses per second of measured time.
	Rate float64 `json:"rate"`
	// Ratio is Rate over the reference's Rate (0 when it did not run).
	Ratio float64       `json:"ratio,omitempty"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
	// PeakRSS is the VmHWM of the serving process and its children (nginx
	// workers) over the whole run; 0 for direct.
	PeakRSS int64 `json:"peak_rss_bytes,omitempty"`
	// CPUPerRequest is the CPU time (user and system) the serving
	// processes used during the measured attacks, per successful request:
	// what a request costs, whatever else competes for the cores.
	CPUPerRequest time.Duration `json:"cpu_per_request_ns,omitempty"`
	Round         []Round       `json:"rounds,omitempty"`
}

// Round is one implementation's figures in one round.
type Round struct {
	Rate float64       `json:"rate"`
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
}

// backendsDescription says what the proxies forward to.
const backendsDescription = "two net/http servers (one child process, GOMAXPROCS=all) answering 200 \"hello, world\\n\" with Content-Length; requests are GET without a body"

// Run measures every selected implementation and, if asked, the fake
// backend and memory figures. Implementations that cannot run here (a peer
// not installed) are reported as skipped.
func Run(ctx context.Context, c Config) (*Report, error) {
	if c.Rounds < 1 || c.Duration <= 0 || c.Load.Workers < 1 || c.Load.Rate < 0 {
		return nil, fmt.Errorf("bench: want rounds ≥ 1, duration > 0, workers ≥ 1, rate ≥ 0; got %d, %v, %d, %d",
			c.Rounds, c.Duration, c.Load.Workers, c.Load.Rate)
	}
	progress := c.Progress
	if progress == nil {
		progress = io.Discard
	}
	impls, err := selected(c.Only)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Started:  time.Now().UTC(),
		Host:     Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		Duration: c.Duration, Warmup: c.Warmup, Rounds: c.Rounds, Load: c.Load,
		Backends: backendsDescription,
	}
	dir, err := os.MkdirTemp("", "proxyspec-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	backends, err := startListening(ctx, "backends", []string{c.Exe, "bench", "serve", "--role", RoleBackend,
		"--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"}, 2, nil)
	if err != nil {
		return nil, err
	}
	defer backends.stop()
	e := &env{exe: c.Exe, backends: backends.addrs, dir: dir, profileDir: c.ProfileDir}

	if len(impls) > 0 {
		if err := measure(ctx, c, e, impls, rep, progress); err != nil {
			return rep, err
		}
	}
	if c.FakeBackend {
		fmt.Fprintln(progress, "fake backend vs net/http hello-world, in process ...")
		fb, err := compareFakeBackend(ctx, c)
		if err != nil {
			return rep, fmt.Errorf("fake backend comparison: %w", err)
		}
		rep.FakeBackend = fb
		fmt.Fprintf(progress, "  ratio %.2f\n", fb.Ratio)
	}
	if c.Memory {
		m, err := measureMemory(ctx, c, e, progress)
		if err != nil {
			return rep, fmt.Errorf("memory: %w", err)
		}
		rep.Memory = m
	}
	return rep, nil
}

func selected(only []string) ([]implementation, error) {
	all := implementations()
	if len(only) == 0 {
		return all, nil
	}
	var out []implementation
	for _, name := range only {
		i := slices.IndexFunc(all, func(im implementation) bool { return im.name == name })
		if i < 0 {
			return nil, fmt.Errorf("bench: unknown implementation %q (want one of %s)", name, strings.Join(ImplementationNames(), ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// measure starts every implementation, loads each in turn for c.Rounds
// rounds, and stops them.
func measure(ctx context.Context, c Config, e *env, impls []implementation, rep *Report, progress io.Writer) error {
	type running struct {
		im   implementation
		proc *process
		urls []string
		lat  []time.Duration
		res  *Result
		secs float64
		cpu  time.Duration
	}
	var rs []*running
	var all []*Result // in table order, skipped ones too
	defer func() {
		for _, r := range rs {
			r.proc.stop()
		}
	}()
	for _, im := range impls {
		res := &Result{Name: im.name, Description: im.description}
		all = append(all, res)
		r := &running{im: im, res: res}
		if im.start == nil {
			for _, b := range e.backends {
				r.urls = append(r.urls, "http://"+b+"/bench")
			}
		} else {
			p, err := im.start(ctx, e)
			if errors.Is(err, errSkipped) {
				res.Skipped = strings.TrimPrefix(err.Error(), errSkipped.Error()+": ")
				fmt.Fprintf(progress, "%-17s skipped: %s\n", im.name, res.Skipped)
				continue
			}
			if err != nil && im.name != Reference {
				// One peer that will not start (an odd version, a port
				// taken) must not cost the whole comparison.
				res.Skipped = "did not start: " + strings.SplitN(err.Error(), "\n", 2)[0]
				fmt.Fprintf(progress, "%-17s %s\n", im.name, res.Skipped)
				continue
			}
			if err != nil {
				return fmt.Errorf("starting %s: %w", im.name, err)
			}
			r.proc, r.urls = p, []string{"http://" + p.addrs[0] + "/bench"}
		}
		rs = append(rs, r)
	}
	for round := 1; round <= c.Rounds; round++ {
		for _, r := range rs {
			if c.Warmup > 0 {
				attack(ctx, r.urls, c.Warmup, c.Load)
			}
			cpu0 := procCPU(r.proc)
			s := attack(ctx, r.urls, c.Duration, c.Load)
			if err := ctx.Err(); err != nil {
				return err
			}
			r.cpu += procCPU(r.proc) - cpu0
			slices.Sort(s.latencies)
			rd := Round{Rate: rate(len(s.latencies), s.elapsed), P50: quantile(s.latencies, .5), P99: quantile(s.latencies, .99)}
			fmt.Fprintf(progress, "round %d/%d  %-17s %8.0f req/s  p50 %-9v p99 %-9v errors %d\n",
				round, c.Rounds, r.im.name, rd.Rate, rd.P50.Round(time.Microsecond), rd.P99.Round(time.Microsecond), s.errors)
			res := r.res
			res.Round = append(res.Round, rd)
			res.Requests += s.requests
			res.Errors += s.errors
			for _, m := range s.errSample {
				if len(res.ErrorSample) < maxErrSample && !slices.Contains(res.ErrorSample, m) {
					res.ErrorSample = append(res.ErrorSample, m)
				}
			}
			r.lat = append(r.lat, s.latencies...)
			r.secs += s.elapsed.Seconds()
		}
	}
	for _, r := range rs {
		slices.Sort(r.lat)
		res := r.res
		if r.secs > 0 {
			res.Rate = float64(len(r.lat)) / r.secs
		}
		res.P50, res.P90, res.P99 = quantile(r.lat, .5), quantile(r.lat, .9), quantile(r.lat, .99)
		if len(r.lat) > 0 {
			res.Max = r.lat[len(r.lat)-1]
		}
		if r.proc != nil {
			res.PeakRSS, _ = r.proc.peakRSS()
			if len(r.lat) > 0 {
				res.CPUPerRequest = r.cpu / time.Duration(len(r.lat))
			}
		}
		r.lat = nil
	}
	for _, res := range all {
		rep.Results = append(rep.Results, *res)
	}
	ref := slices.IndexFunc(rep.Results, func(r Result) bool { return r.Name == Reference })
	if ref >= 0 && rep.Results[ref].Rate > 0 {
		for i := range rep.Results {
			rep.Results[i].Ratio = rep.Results[i].Rate / rep.Results[ref].Rate
		}
	}
	return nil
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// procCPU is the CPU time p has used, 0 for no process or when unknown.
func procCPU(p *process) time.Duration {
	if p == nil {
		return 0
	}
	t, _ := p.cpu()
	return t
}
