// Command smoke starts each real peer proxy the way the kit's command subject
// does (ci/peers/NAME/config.tmpl rendered into a private dir, ci/peers/NAME/cmd
// run in its own process group) and prints what it does with plain requests:
// start-up time, backend order, prefix handling, failover, timeouts, the
// headers it adds or drops, and how it stops. It is a hand check of the
// templates, not the conformance suite: it prints observations and fails
// only when a peer cannot be started or stopped.
//
//	go run ./ci/peers/smoke                      # every peer under ci/peers
//	go run ./ci/peers/smoke -peers nginx,caddy
//	go run ./ci/peers/smoke -render nginx -prefix /api -backends 2
//
// Traffic goes to 127.0.0.1 only.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "ci/peers", "folder holding one folder per peer")
	only := flag.String("peers", "", "comma-separated peers to check (default: all)")
	render := flag.String("render", "", "print the rendered config and command of this peer and exit")
	prefix := flag.String("prefix", "", "with -render: the path prefix")
	nb := flag.Int("backends", 2, "with -render: how many (unstarted) backends")
	flag.Parse()

	// An interrupt stops the running peer first. A closed stdout ("smoke |
	// head") must not kill us between a start and its stop either: with
	// SIGPIPE ignored, prints fail quietly and every peer is still stopped.
	signal.Ignore(syscall.SIGPIPE)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sig
		running.stop()
		os.Exit(2)
	}()

	if *render != "" {
		p, err := loadPeer(filepath.Join(*dir, *render))
		if err != nil {
			fatal(err)
		}
		t := topology{prefix: *prefix, connect: 300 * time.Millisecond, readTMO: 500 * time.Millisecond}
		for i := range *nb {
			t.backends = append(t.backends, fmt.Sprintf("127.0.0.1:%d", 9001+i))
		}
		d, args, err := p.render(t)
		if err != nil {
			fatal(err)
		}
		cfg, _ := os.ReadFile(d.ConfigFile)
		fmt.Printf("# %s\n%s\n# command: %q\n", d.ConfigFile, cfg, args)
		return
	}

	names := strings.FieldsFunc(*only, func(r rune) bool { return r == ',' })
	if len(names) == 0 {
		entries, err := os.ReadDir(*dir)
		if err != nil {
			fatal(err)
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(*dir, e.Name(), "config.tmpl")); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	failed := false
	for _, n := range names {
		p, err := loadPeer(filepath.Join(*dir, n))
		if err != nil {
			fatal(err)
		}
		if !check(p) {
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "smoke:", err)
	os.Exit(2)
}

// Timeouts of every check's topology; the kit's timeout topologies use
// values of this order.
const (
	connectTimeout = 300 * time.Millisecond
	readTimeout    = 500 * time.Millisecond
)

// check runs every observation against p and reports whether p could be
// started and stopped each time.
func check(p *peer) bool {
	fmt.Printf("== %s (lacks: %s)\n", p.name, p.lacks)
	ok := true
	var starts []time.Duration
	run := func(what string, bs *backends, t topology, body func(in *instance)) {
		defer bs.close()
		t.connect, t.readTMO = connectTimeout, readTimeout
		in, err := p.start(t)
		if err != nil {
			fmt.Printf("  %-12s START FAILED: %v\n", what, err)
			ok = false
			return
		}
		fmt.Printf("  %-12s started in %v\n", what, in.startup.Round(time.Millisecond))
		starts = append(starts, in.startup)
		body(in)
		took, err := in.stop()
		if err != nil {
			fmt.Printf("  %-12s STOP: %v\n%s\n", what, err, in.out.String())
			ok = false
			return
		}
		fmt.Printf("  %-12s stopped in %v\n", what, took.Round(time.Millisecond))
		if out := strings.TrimSpace(in.out.String()); out != "" && verbose {
			fmt.Printf("  output:\n%s\n", indent(out))
		}
	}

	{
		bs := &backends{}
		a, _ := bs.up("a")
		b, _ := bs.up("b")
		run("round-robin", bs, topology{backends: []string{a, b}}, func(in *instance) {
			fmt.Printf("    order of 8 GETs: %s\n", order(in, 8, "GET", "/rr"))
			bs.reset()
			r := send(in, "GET /probe?q=1 HTTP/1.1\r\nHost: client.test\r\n"+
				"X-Forwarded-For: 203.0.113.7\r\nVia: 1.0 upstream-hop\r\n"+
				"Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n"+
				"TE: trailers\r\nProxy-Authorization: Basic eDp5\r\nUpgrade: foo/1\r\n\r\n")
			fmt.Printf("    probe: %s\n", r)
			for _, s := range bs.received() {
				fmt.Printf("    upstream: %s %s %s Host=%q\n", s.Method, s.Path, s.Proto, s.Host)
				for _, k := range []string{"X-Forwarded-For", "Via", "Connection", "X-Hop", "Keep-Alive", "Te", "Proxy-Authorization", "Upgrade", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Server", "Forwarded", "X-Real-Ip"} {
					if v, ok := s.Header[k]; ok {
						fmt.Printf("      %s: %q\n", k, v)
					}
				}
			}
		})
	}
	{
		bs := &backends{}
		var addrs []string
		for _, n := range []string{"a", "b", "c", "d", "e"} {
			addr, _ := bs.up(n)
			addrs = append(addrs, addr)
		}
		run("five", bs, topology{backends: addrs}, func(in *instance) {
			fmt.Printf("    order of 10 GETs: %s\n", order(in, 10, "GET", "/five"))
		})
	}
	{
		bs := &backends{}
		a, _ := bs.up("a")
		b, _ := bs.up("b")
		run("prefix", bs, topology{backends: []string{a, b}, prefix: "/api"}, func(in *instance) {
			for _, path := range []string{"/api", "/api/x?y=1", "/apix", "/other", "/"} {
				bs.reset()
				r := get(in, path)
				fmt.Printf("    GET %-11s -> %s, backends saw %d\n", path, r, len(bs.received()))
			}
		})
	}
	{
		bs := &backends{}
		d, _ := bs.down()
		b, _ := bs.up("b")
		run("failover", bs, topology{backends: []string{d, b}}, func(in *instance) {
			for range 3 {
				fmt.Printf("    GET  -> %s\n", get(in, "/f"))
			}
			for range 2 {
				fmt.Printf("    POST -> %s\n", send(in, "POST /f HTTP/1.1\r\nHost: client.test\r\nContent-Length: 2\r\n\r\nhi"))
			}
			hosts := map[string]bool{}
			for _, s := range bs.received() {
				hosts[s.Host] = true
			}
			fmt.Printf("    Host seen by b (%s) after failover: %v\n", b, slices.Sorted(maps.Keys(hosts)))
		})
	}
	{
		bs := &backends{}
		d1, _ := bs.down()
		d2, _ := bs.down()
		run("all-down", bs, topology{backends: []string{d1, d2}}, func(in *instance) {
			for range 2 {
				fmt.Printf("    GET  -> %s\n", get(in, "/d"))
			}
		})
	}
	run("zero", &backends{}, topology{}, func(in *instance) {
		fmt.Printf("    GET  -> %s\n", get(in, "/z"))
	})
	{
		bs := &backends{delay: 3 * readTimeout}
		a, _ := bs.up("slow")
		run("read-tmo", bs, topology{backends: []string{a}}, func(in *instance) {
			fmt.Printf("    GET (backend waits %v, read timeout %v) -> %s\n", 3*readTimeout, readTimeout, get(in, "/slow"))
		})
	}
	{
		bs := &backends{}
		h, err := bs.blackhole()
		if err != nil {
			fmt.Printf("  blackhole: %v\n", err)
		}
		b, _ := bs.up("b")
		run("connect-tmo", bs, topology{backends: []string{h, b}}, func(in *instance) {
			for range 2 {
				fmt.Printf("    GET [blackhole, b] (connect timeout %v) -> %s\n", connectTimeout, get(in, "/h"))
			}
		})
	}
	if len(starts) > 0 {
		slices.Sort(starts)
		fmt.Printf("  start-up (until the port accepts): min %v, median %v, max %v over %d starts\n",
			starts[0].Round(time.Millisecond), starts[len(starts)/2].Round(time.Millisecond),
			starts[len(starts)-1].Round(time.Millisecond), len(starts))
	}
	return ok
}

var verbose = os.Getenv("SMOKE_VERBOSE") != ""

// result is what the client saw for one request.
type result struct {
	status  int
	backend string
	header  http.Header
	elapsed time.Duration
	err     error
	body    string
}

func (r result) String() string {
	if r.err != nil {
		return fmt.Sprintf("error %v after %v", r.err, r.elapsed.Round(time.Millisecond))
	}
	s := fmt.Sprintf("%d", r.status)
	if r.backend != "" {
		s += " from " + r.backend
	} else {
		s += fmt.Sprintf(" body %.40q", r.body)
	}
	s += fmt.Sprintf(" in %v", r.elapsed.Round(time.Millisecond))
	if v := r.header.Values("Via"); len(v) > 0 {
		s += fmt.Sprintf(" Via=%q", v)
	}
	if v := r.header.Values("X-Resp-Hop"); len(v) > 0 {
		s += " LEAKS X-Resp-Hop"
	}
	if v := r.header.Values("Connection"); len(v) > 0 {
		s += fmt.Sprintf(" Connection=%q", v)
	}
	if v := r.header.Get("Content-Type"); v != "" && r.backend == "" {
		s += fmt.Sprintf(" Content-Type=%q", v)
	}
	return s
}

func get(in *instance, path string) result {
	return send(in, "GET "+path+" HTTP/1.1\r\nHost: client.test\r\n\r\n")
}

func order(in *instance, n int, method, path string) string {
	var names []string
	for range n {
		r := send(in, method+" "+path+" HTTP/1.1\r\nHost: client.test\r\n\r\n")
		switch {
		case r.err != nil:
			names = append(names, "ERR")
		case r.backend == "":
			names = append(names, fmt.Sprint(r.status))
		default:
			names = append(names, r.backend)
		}
	}
	return strings.Join(names, " ")
}

// send writes raw on a fresh connection and reads one response.
func send(in *instance, raw string) result {
	began := time.Now()
	c, err := net.DialTimeout("tcp", in.data.Listen, 2*time.Second)
	if err != nil {
		return result{err: err, elapsed: time.Since(began)}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return result{err: err, elapsed: time.Since(began)}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return result{err: err, elapsed: time.Since(began)}
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := result{status: resp.StatusCode, header: resp.Header, elapsed: time.Since(began), body: string(body)}
	r.backend = resp.Header.Get("X-Backend")
	return r
}

func indent(s string) string {
	return "      " + strings.ReplaceAll(s, "\n", "\n      ")
}
