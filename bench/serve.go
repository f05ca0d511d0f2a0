package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/internal/peer"
	"github.com/proxyspec/proxyspec/proxy"
)

// Roles a "bench serve" child process can play.
const (
	RoleBackend        = "backend"          // the bench's hello-world backend, one per --listen
	RoleReference      = "reference"        // proxy.New, seed mode
	RolePooled         = "reference-pooled" // proxy.New with WithPooledUpstream
	RoleHTTPUtil       = "httputil"         // internal/peer.HTTPUtil: keep-alives off
	RoleHTTPUtilPooled = "httputil-pooled"  // httputil.ReverseProxy on a keep-alive Transport
)

// Roles lists the roles Serve knows.
var Roles = []string{RoleBackend, RoleReference, RolePooled, RoleHTTPUtil, RoleHTTPUtilPooled}

// Hello is the body of the bench backend's answer to every path but /sink
// and /bytes/N.
const Hello = "hello, world\n"

// ServeConfig is what a "bench serve" child runs.
type ServeConfig struct {
	Role       string
	Listen     []string // one address per backend; a proxy takes the first
	Backends   []string // backend URLs, for a proxy role
	CPUProfile string   // write a CPU profile here while serving
}

// Serve runs c.Role until ctx ends. Once every listener is open it writes
// one line per listener to stdout:
//
//	listening 127.0.0.1:40123
//
// Proxies log nothing per request (as nginx with access_log off) and only
// warnings to stderr.
func Serve(ctx context.Context, c ServeConfig, stdout, stderr io.Writer) error {
	if len(c.Listen) == 0 {
		return errors.New("bench serve: no listen address")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var h http.Handler
	switch c.Role {
	case RoleBackend:
		h = backendHandler()
	case RoleReference, RolePooled:
		opts := []proxy.Option{proxy.WithLogger(log)}
		if c.Role == RolePooled {
			opts = append(opts, proxy.WithPooledUpstream())
		}
		p, err := proxy.New(c.Backends, opts...)
		if err != nil {
			return fmt.Errorf("bench serve %s: %w", c.Role, err)
		}
		defer p.CloseIdleConnections()
		h = p
	case RoleHTTPUtil:
		t := conformance.Topology{ConnectTimeout: proxy.DefaultConnectTimeout, ReadTimeout: proxy.DefaultReadTimeout}
		for i, b := range c.Backends {
			t.Backends = append(t.Backends, conformance.Endpoint{Name: strconv.Itoa(i), URL: b})
		}
		var err error
		if h, err = peer.HTTPUtil(t); err != nil {
			return fmt.Errorf("bench serve %s: %w", c.Role, err)
		}
	case RoleHTTPUtilPooled:
		rp, err := pooledHTTPUtil(c.Backends)
		if err != nil {
			return fmt.Errorf("bench serve %s: %w", c.Role, err)
		}
		h = rp
	default:
		return fmt.Errorf("bench serve: unknown role %q (want one of %s)", c.Role, strings.Join(Roles, ", "))
	}
	listen := c.Listen
	if c.Role != RoleBackend {
		listen = listen[:1]
	}
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return fmt.Errorf("bench serve: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench serve: cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	srv := &http.Server{
		Handler: h,
		// The limits `proxyspec proxy` sets on its own server.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, len(listen))
	for _, addr := range listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("bench serve: listen %q: %w", addr, err)
		}
		go func() { served <- srv.Serve(ln) }()
		fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		srv.Close()
		return fmt.Errorf("bench serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// backendHandler answers Hello to any path, and two paths for the memory
// measurements: /sink reads the request body and answers its length;
// /bytes/N answers N bytes.
func backendHandler() http.Handler {
	hello := []byte(Hello)
	fill := make([]byte, 64<<10)
	for i := range fill {
		fill[i] = 'x'
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		switch {
		case r.URL.Path == "/sink":
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			io.WriteString(w, strconv.FormatInt(n, 10))
		case strings.HasPrefix(r.URL.Path, "/bytes/"):
			n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/bytes/"), 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "bad length", http.StatusBadRequest)
				return
			}
			h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
			for n > 0 {
				k, err := w.Write(fill[:min(n, int64(len(fill)))])
				if err != nil {
					return
				}
				n -= int64(k)
			}
		default:
			h["Content-Length"] = []string{strconv.Itoa(len(hello))}
			w.Write(hello)
		}
	})
}

// pooledHTTPUtil is httputil.ReverseProxy as its documentation suggests,
// round-robin over backends, on a keep-alive Transport with as many idle
// connections per backend as the reference's pooled mode keeps.
func pooledHTTPUtil(backends []string) (http.Handler, error) {
	var us []*url.URL
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("backend %q: want http://host:port", b)
		}
		us = append(us, u)
	}
	if len(us) == 0 {
		return nil, errors.New("no backends")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = proxy.PooledIdlePerBackend
	tr.DisableCompression = true
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(us[(next.Add(1)-1)%uint64(len(us))])
			r.SetXForwarded()
			r.Out.Header.Add("Via", "1.1 rws")
		},
		Transport: tr,
	}, nil
}
