package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/proxyspec/proxyspec/bench"
)

func init() {
	register(command{
		name:    "bench",
		summary: "compare the reference proxy's throughput, latency and memory with nginx, HAProxy and httputil",
		run:     runBench,
	})
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve" {
		return runBenchServe(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("proxyspec bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := bench.Config{Progress: stderr}
	var only, out string
	var markdown bool
	fs.DurationVar(&c.Duration, "duration", 3*time.Second, "measured load per implementation and round")
	fs.DurationVar(&c.Warmup, "warmup", 500*time.Millisecond, "unmeasured load before each measurement")
	fs.IntVar(&c.Rounds, "rounds", 3, "rounds; each loads every implementation once, in turn")
	fs.IntVar(&c.Load.Rate, "rate", 0, "requests per second; 0 sends as fast as the workers allow")
	fs.IntVar(&c.Load.Workers, "workers", 32, "concurrent requests, each on its own kept-alive client connection")
	fs.StringVar(&only, "only", "", "comma-separated `implementations` to run: "+strings.Join(bench.ImplementationNames(), ","))
	fs.StringVar(&out, "out", "", "write the raw results as JSON to `file`")
	fs.BoolVar(&markdown, "markdown", false, "print the table as Markdown")
	fs.BoolVar(&c.FakeBackend, "fakebackend", true, "compare the fake backend with a bare net/http server")
	fs.BoolVar(&c.Memory, "memory", true, "measure `proxyspec proxy` memory with large bodies and idle connections")
	fs.Int64Var(&c.BodySize, "body-size", 1<<30, "request and response body size for the memory figures, in bytes")
	fs.IntVar(&c.IdleConns, "idle-conns", 10000, "idle client connections for the memory figures")
	fs.StringVar(&c.ProfileDir, "profile", "", "write a CPU profile of each Go proxy into `dir`")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: proxyspec bench [flags]

Loads the reference proxy, httputil.ReverseProxy, nginx and HAProxy (those
installed), each in front of the same two loopback backends, with the same
client (vegeta) in the same run, and direct to the backends as the ceiling;
then compares the fake backend with net/http and measures the memory of
'proxyspec proxy'. Prints a table (req/s, ratio to the reference, latency
percentiles of successful requests, errors, peak RSS) and progress on stderr.
Everything runs on loopback; every process shares this machine's cores.

Exit status: 0 when done, 1 when the reference proxy (seed or pooled) had
errors under load, 2 on a usage or setup error.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "proxyspec bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if only != "" {
		c.Only = strings.Split(only, ",")
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "proxyspec bench: %v\n", err)
		return 2
	}
	c.Exe = exe
	if c.ProfileDir != "" {
		if err := os.MkdirAll(c.ProfileDir, 0o755); err != nil {
			fmt.Fprintf(stderr, "proxyspec bench: %v\n", err)
			return 2
		}
	}
	rep, err := bench.Run(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "proxyspec bench: %v\n", err)
		return 2
	}
	if out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "proxyspec bench: %v\n", err)
			return 2
		}
	}
	fmt.Fprintf(stdout, "%d CPUs, %s; %d workers, rate %s; %v × %d rounds (+%v warm-up) per implementation\n",
		rep.Host.CPUs, rep.Host.GoVersion, c.Load.Workers, rateString(c.Load.Rate), c.Duration, c.Rounds, c.Warmup)
	if markdown {
		rep.WriteMarkdown(stdout)
	} else {
		rep.WriteTable(stdout)
	}
	code := 0
	for _, r := range rep.Results {
		if (r.Name == bench.Reference || r.Name == "reference-pooled") && r.Errors > 0 {
			fmt.Fprintf(stderr, "proxyspec bench: %s: %d errors under load, e.g. %q\n", r.Name, r.Errors, r.ErrorSample)
			code = 1
		}
	}
	return code
}

func rateString(r int) string {
	if r == 0 {
		return "max"
	}
	return fmt.Sprintf("%d/s", r)
}

// runBenchServe is the child side of the bench: a backend or a Go proxy.
func runBenchServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxyspec bench serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c bench.ServeConfig
	var listen, backends listFlag
	fs.StringVar(&c.Role, "role", "", "what to serve: "+strings.Join(bench.Roles, ", "))
	fs.Var(&listen, "listen", "`host:port` to listen on (repeated: one per backend)")
	fs.Var(&backends, "backend", "backend `URL` of a proxy role (repeated)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile to `file` until stopped")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	c.Listen, c.Backends = listen, backends
	if err := bench.Serve(ctx, c, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	return 0
}
