package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MemoryResult is the reference proxy's memory, as `proxyspec proxy` in a
// child process, read from /proc/PID/status.
type MemoryResult struct {
	// StartRSS is VmRSS once the proxy listens, before any request.
	StartRSS int64      `json:"start_rss_bytes"`
	Upload   BodyMemory `json:"upload"`
	Download BodyMemory `json:"download"`
	Idle     IdleMemory `json:"idle"`
}

// BodyMemory is one large body through a fresh proxy.
type BodyMemory struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	// PeakRSS is the proxy's VmHWM after the transfer.
	PeakRSS int64 `json:"peak_rss_bytes"`
}

// IdleMemory is a fresh proxy holding Conns idle client connections, each
// of which has carried one request and stays open (keep-alive).
type IdleMemory struct {
	Conns   int     `json:"conns"`
	Seconds float64 `json:"seconds_to_open"`
	RSS     int64   `json:"rss_bytes"` // VmRSS with every connection open
	PeakRSS int64   `json:"peak_rss_bytes"`
	// PerConn is (RSS - StartRSS) / Conns.
	PerConn int64 `json:"per_conn_bytes"`
}

// memoryPatience bounds each memory measurement.
const memoryPatience = 2 * time.Minute

func measureMemory(ctx context.Context, c Config, e *env, progress io.Writer) (*MemoryResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*memoryPatience)
	defer cancel()
	m := &MemoryResult{}
	backend := "http://" + e.backends[0]
	fmt.Fprintf(progress, "memory: %d MiB request body through `proxyspec proxy` ...\n", c.BodySize>>20)
	err := withProxy(ctx, e, func(p *process, base string) error {
		var err error
		if m.StartRSS, err = p.rss(); err != nil {
			return err
		}
		m.Upload, err = upload(ctx, p, base+"/sink", c.BodySize)
		return err
	}, backend)
	if err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	fmt.Fprintf(progress, "  peak RSS %s in %.1f s\n", mib(m.Upload.PeakRSS), m.Upload.Seconds)

	fmt.Fprintf(progress, "memory: %d MiB response body ...\n", c.BodySize>>20)
	err = withProxy(ctx, e, func(p *process, base string) error {
		var err error
		m.Download, err = download(ctx, p, base+"/bytes/"+strconv.FormatInt(c.BodySize, 10), c.BodySize)
		return err
	}, backend)
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	fmt.Fprintf(progress, "  peak RSS %s in %.1f s\n", mib(m.Download.PeakRSS), m.Download.Seconds)

	fmt.Fprintf(progress, "memory: %d idle client connections ...\n", c.IdleConns)
	err = withProxy(ctx, e, func(p *process, base string) error {
		start, err := p.rss()
		if err != nil {
			return err
		}
		m.Idle, err = holdIdle(ctx, p, strings.TrimPrefix(base, "http://"), c.IdleConns)
		if err == nil && c.IdleConns > 0 {
			m.Idle.PerConn = (m.Idle.RSS - start) / int64(c.IdleConns)
		}
		return err
	}, backend)
	if err != nil {
		return nil, fmt.Errorf("idle connections: %w", err)
	}
	fmt.Fprintf(progress, "  RSS %s (peak %s, %d bytes per connection), opened in %.1f s\n",
		mib(m.Idle.RSS), mib(m.Idle.PeakRSS), m.Idle.PerConn, m.Idle.Seconds)
	return m, nil
}

// withProxy runs f against a fresh `proxyspec proxy` in front of backend,
// so that each figure's VmHWM is its own.
func withProxy(ctx context.Context, e *env, f func(p *process, base string) error, backend string) error {
	p, err := startListening(ctx, "proxyspec proxy", []string{e.exe, "proxy", "--listen", "127.0.0.1:0", "--backend", backend}, 1,
		func(c *exec.Cmd) { c.Stderr = nil })
	if err != nil {
		return err
	}
	defer p.stop()
	return f(p, "http://"+p.addrs[0])
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func upload(ctx context.Context, p *process, url string, n int64) (BodyMemory, error) {
	ctx, cancel := context.WithTimeout(ctx, memoryPatience)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, io.LimitReader(zeros{}, n))
	if err != nil {
		return BodyMemory{}, err
	}
	req.ContentLength = n
	t0 := time.Now()
	res, err := plainClient().Do(req)
	if err != nil {
		return BodyMemory{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return BodyMemory{}, err
	}
	if res.StatusCode != http.StatusOK || string(b) != strconv.FormatInt(n, 10) {
		return BodyMemory{}, fmt.Errorf("backend answered %d %q, want 200 %d", res.StatusCode, b, n)
	}
	return bodyMemory(p, n, t0)
}

func download(ctx context.Context, p *process, url string, n int64) (BodyMemory, error) {
	ctx, cancel := context.WithTimeout(ctx, memoryPatience)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return BodyMemory{}, err
	}
	t0 := time.Now()
	res, err := plainClient().Do(req)
	if err != nil {
		return BodyMemory{}, err
	}
	defer res.Body.Close()
	got, err := io.Copy(io.Discard, res.Body)
	if err != nil {
		return BodyMemory{}, err
	}
	if res.StatusCode != http.StatusOK || got != n {
		return BodyMemory{}, fmt.Errorf("got %d and %d bytes, want 200 and %d", res.StatusCode, got, n)
	}
	return bodyMemory(p, n, t0)
}

func bodyMemory(p *process, n int64, t0 time.Time) (BodyMemory, error) {
	secs := time.Since(t0).Seconds()
	hwm, err := p.peakRSS()
	return BodyMemory{Bytes: n, Seconds: secs, PeakRSS: hwm}, err
}

func plainClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
}

// holdIdle opens n connections to addr, sends one request on each and
// reads its answer, keeps them all open while the proxy's RSS is read,
// then closes them.
func holdIdle(ctx context.Context, p *process, addr string, n int) (IdleMemory, error) {
	if err := raiseNoFile(uint64(n) + 1024); err != nil {
		return IdleMemory{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, memoryPatience)
	defer cancel()
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := oneRequest(ctx, addr)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return IdleMemory{}, err
	}
	idle := IdleMemory{Conns: n, Seconds: time.Since(t0).Seconds()}
	var err error
	if idle.RSS, err = p.rss(); err != nil {
		return idle, err
	}
	idle.PeakRSS, err = p.peakRSS()
	return idle, err
}

// oneRequest opens a connection, sends a keep-alive GET on it and reads the
// whole answer, leaving the connection idle.
func oneRequest(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(memoryPatience))
	if _, err := io.WriteString(c, "GET /bench HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	res, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err == nil {
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", res.StatusCode)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// raiseNoFile raises this process's soft RLIMIT_NOFILE to at least want,
// within the hard limit.
func raiseNoFile(want uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= want {
		return nil
	}
	if l.Max < want {
		return fmt.Errorf("RLIMIT_NOFILE hard limit %d under the %d descriptors needed", l.Max, want)
	}
	l.Cur = want
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
