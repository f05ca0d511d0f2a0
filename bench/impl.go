package bench

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"text/template"
)

// An implementation is one way of serving the bench's requests: a proxy in
// front of the two backends, or none (direct).
type implementation struct {
	name, description string
	// start starts it and returns the process serving it; nil for direct.
	start func(ctx context.Context, e *env) (*process, error)
}

// env is what starting an implementation needs.
type env struct {
	exe        string   // the proxyspec binary
	backends   []string // host:port of the two backends
	dir        string   // scratch directory of the run
	profileDir string   // where Go proxies write CPU profiles; "" for none
}

func (e *env) urls() []string {
	var us []string
	for _, b := range e.backends {
		us = append(us, "http://"+b)
	}
	return us
}

// Names of the implementations, in table order: the seed-mode ones (one
// upstream connection per request), then the pooled ones.
const (
	Direct    = "direct"
	Reference = "reference"
)

func implementations() []implementation {
	cores := runtime.NumCPU()
	return []implementation{
		{Direct, "the two backends, no proxy: the ceiling", nil},
		goProxy(Reference, RoleReference, "proxy.New, seed mode: Connection: close upstream, no request log"),
		{"proxyspec-proxy", "the `proxyspec proxy` command: the reference with its Info log line per request (to /dev/null)", startProxyCommand},
		goProxy("httputil", RoleHTTPUtil, "httputil.ReverseProxy, keep-alives off (internal/peer)"),
		nginx("nginx-1w", "nginx, 1 worker, HTTP/1.0 + Connection: close upstream", 1, false),
		nginx("nginx", fmt.Sprintf("nginx, %d workers (one per core), HTTP/1.0 + Connection: close upstream", cores), cores, false),
		haproxy("haproxy-1t", "HAProxy, 1 thread, http-server-close", 1, false),
		haproxy("haproxy", fmt.Sprintf("HAProxy, %d threads (one per core), http-server-close", cores), cores, false),
		goProxy("reference-pooled", RolePooled, "proxy.New with WithPooledUpstream: kept-alive upstream connections"),
		goProxy("httputil-pooled", RoleHTTPUtilPooled, "httputil.ReverseProxy on a keep-alive Transport"),
		nginx("nginx-keepalive", fmt.Sprintf("nginx, %d workers, HTTP/1.1 upstream, keepalive %d per worker", cores, nginxIdle), cores, true),
		haproxy("haproxy-reuse", fmt.Sprintf("HAProxy, %d threads, http-reuse always", cores), cores, true),
	}
}

// nginxIdle is nginx's keepalive cache per worker in the pooled setup.
const nginxIdle = 64

// ImplementationNames lists every implementation the bench knows, in
// table order.
func ImplementationNames() []string {
	var names []string
	for _, im := range implementations() {
		names = append(names, im.name)
	}
	return names
}

func goProxy(name, role, description string) implementation {
	return implementation{name, description, func(ctx context.Context, e *env) (*process, error) {
		argv := []string{e.exe, "bench", "serve", "--role", role, "--listen", "127.0.0.1:0"}
		for _, u := range e.urls() {
			argv = append(argv, "--backend", u)
		}
		if e.profileDir != "" {
			argv = append(argv, "--cpuprofile", filepath.Join(e.profileDir, name+".pprof"))
		}
		return startListening(ctx, name, argv, 1, nil)
	}}
}

// startProxyCommand runs `proxyspec proxy` as users do; its per-request log
// goes to /dev/null, so what it costs is formatting and a write(2).
func startProxyCommand(ctx context.Context, e *env) (*process, error) {
	argv := []string{e.exe, "proxy", "--listen", "127.0.0.1:0"}
	for _, u := range e.urls() {
		argv = append(argv, "--backend", u)
	}
	return startListening(ctx, "proxyspec-proxy", argv, 1, func(c *exec.Cmd) { c.Stderr = nil })
}

//go:embed peers/*.tmpl
var peerConfigs embed.FS

// peerData is what the peer config templates see.
type peerData struct {
	Dir       string
	Listen    string
	Backends  []string
	Workers   int
	KeepAlive bool
	Idle      int
}

func nginx(name, description string, workers int, keepAlive bool) implementation {
	return implementation{name, description, func(ctx context.Context, e *env) (*process, error) {
		bin, err := exec.LookPath("nginx")
		if err != nil {
			return nil, fmt.Errorf("%w: nginx not installed (ci/install-peers.sh installs it)", errSkipped)
		}
		dir, addr, conf, err := renderPeer(e, name, "nginx.conf.tmpl", workers, keepAlive)
		if err != nil {
			return nil, err
		}
		return startOnPort(ctx, name, []string{bin, "-e", "stderr", "-p", dir, "-c", conf}, dir, addr)
	}}
}

func haproxy(name, description string, threads int, keepAlive bool) implementation {
	return implementation{name, description, func(ctx context.Context, e *env) (*process, error) {
		bin, err := exec.LookPath("haproxy")
		if err != nil {
			return nil, fmt.Errorf("%w: haproxy not installed (ci/install-peers.sh installs it)", errSkipped)
		}
		dir, addr, conf, err := renderPeer(e, name, "haproxy.cfg.tmpl", threads, keepAlive)
		if err != nil {
			return nil, err
		}
		return startOnPort(ctx, name, []string{bin, "-db", "-f", conf}, dir, addr)
	}}
}

// renderPeer writes a peer's config into its own directory under the run's
// and returns the directory, the address it will listen on and the file.
func renderPeer(e *env, name, tmpl string, workers int, keepAlive bool) (dir, addr, file string, err error) {
	dir = filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", "", err
	}
	if addr, err = freeAddr(); err != nil {
		return "", "", "", err
	}
	t, err := template.ParseFS(peerConfigs, "peers/"+tmpl)
	if err != nil {
		return "", "", "", err
	}
	var buf bytes.Buffer
	d := peerData{Dir: dir, Listen: addr, Backends: e.backends, Workers: workers, KeepAlive: keepAlive, Idle: nginxIdle}
	if err := t.Execute(&buf, d); err != nil {
		return "", "", "", fmt.Errorf("%s config: %w", name, err)
	}
	file = filepath.Join(dir, "config")
	return dir, addr, file, os.WriteFile(file, buf.Bytes(), 0o644)
}
