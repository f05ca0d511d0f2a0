// Package container runs fake backends as Docker containers, for the failures
// only containers give — a backend stopped (connections refused), paused
// (connections accepted, never answered) or cut off its network
// (unreachable) — and for proxies under test that run in containers
// themselves and reach backends by name.
//
// A Run owns everything it creates: one image, built from a static build of
// the proxyspec command; one network; the backend containers. All of it is
// labelled proxyspec.run=<id> and removed by Close. What a crashed run left
// behind (its process is gone) is swept by the next NewRun on the same host.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Labels put on every image, network and container a Run creates.
const (
	LabelRun     = "proxyspec.run"     // the run id
	LabelPID     = "proxyspec.pid"     // the process that owns the run
	LabelHost    = "proxyspec.host"    // the host that process runs on
	LabelBackend = "proxyspec.backend" // on containers: the backend's name
)

// Ports a backend container listens on, on all its interfaces.
const (
	DataPort    = 8080
	ControlPort = 8081
)

// closeTimeout bounds Close, which may run after the caller's context ended
// (Ctrl-C) and must still clean up.
const closeTimeout = time.Minute

// Run is one run's set of Docker resources. Its methods are safe for
// concurrent use.
type Run struct {
	id       string
	pid      int
	hostname string
	image    string // reference: repo:tag
	network  string // name
	netID    string
	logger   *log.Logger
	provider *testcontainers.DockerProvider
	docker   client.APIClient
	// host is where mapped ports are reached; bind is the host address they
	// are published on ("" for all).
	host, bind string

	mu       sync.Mutex
	closed   bool
	starting sync.WaitGroup // Start calls in flight; Close waits for them
	backends map[string]*Backend
}

// Option configures NewRun.
type Option func(*config)

type config struct {
	binary string
	log    io.Writer
}

// WithBinary uses a proxyspec binary already built (static, for linux on the
// engine's architecture) instead of building one with the go command.
func WithBinary(path string) Option { return func(c *config) { c.binary = path } }

// WithLog sends what the run does (and testcontainers' own log) to w. By
// default nothing is logged.
func WithLog(w io.Writer) Option { return func(c *config) { c.log = w } }

// NewRun sweeps leftovers of crashed runs, then creates a network and builds
// the backend image for a new run. Without a usable Docker engine it returns
// an error wrapping ErrNoDocker (see there). The caller must Close the run,
// also on Ctrl-C: hook Close to the signal, or cancel the context that leads
// to it.
func NewRun(ctx context.Context, opts ...Option) (*Run, error) {
	setEnvDefaults()
	quietTestcontainers()
	cfg := config{log: io.Discard}
	for _, o := range opts {
		o(&cfg)
	}
	hostname, _ := os.Hostname()
	r := &Run{
		id:       newID(),
		pid:      os.Getpid(),
		hostname: hostname,
		logger:   log.New(cfg.log, "proxyspec container: ", log.Lmicroseconds),
		backends: map[string]*Backend{},
	}
	r.image = imageRepo + ":" + r.id
	r.network = "proxyspec-" + r.id

	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(r.logger))
	if err != nil {
		return nil, noDocker(err)
	}
	if err := p.Health(ctx); err != nil {
		p.Close()
		return nil, noDocker(err)
	}
	r.provider, r.docker = p, p.Client()
	if err := r.locate(ctx); err != nil {
		p.Close()
		return nil, err
	}

	if n, err := r.sweep(ctx); err != nil {
		// Leftovers cost space, not correctness: say so and go on.
		r.logger.Printf("sweeping leftovers of crashed runs: %v", err)
	} else if n > 0 {
		r.logger.Printf("swept %d leftovers of crashed runs", n)
	}

	nw, err := r.docker.NetworkCreate(ctx, r.network, client.NetworkCreateOptions{Driver: "bridge", Labels: r.labels(nil)})
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("container: create network %s: %w", r.network, err)
	}
	r.netID = nw.ID
	start := time.Now()
	if err := r.buildImage(ctx, cfg.binary); err != nil {
		r.Close()
		return nil, err
	}
	r.logger.Printf("run %s: network %s, image %s built in %s", r.id, r.network, r.image, time.Since(start).Round(time.Millisecond))
	return r, nil
}

// locate decides where mapped ports are published and reached. With the
// engine on this machine they are published on loopback only: a fake backend
// has no business being reachable from the network this host is on.
func (r *Run) locate(ctx context.Context) error {
	host, err := r.provider.DaemonHost(ctx)
	if err != nil {
		return noDocker(err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		r.host, r.bind = "127.0.0.1", "127.0.0.1"
		return nil
	}
	r.host = host
	return nil
}

// ID is the run id, unique per run; it is in every label and name.
func (r *Run) ID() string { return r.id }

// Network is the name of the run's Docker network; a proxy under test in a
// container joins it to reach backends by name.
func (r *Run) Network() string { return r.network }

// Image is the reference of the run's image, which runs the proxyspec
// command; a proxy-under-test container may run it too.
func (r *Run) Image() string { return r.image }

// Backends returns the backends started and not closed, by name.
func (r *Run) Backends() map[string]*Backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*Backend, len(r.backends))
	for n, b := range r.backends {
		out[n] = b
	}
	return out
}

// labels returns the run's labels plus extra.
func (r *Run) labels(extra map[string]string) map[string]string {
	l := map[string]string{
		LabelRun:  r.id,
		LabelPID:  strconv.Itoa(r.pid),
		LabelHost: r.hostname,
	}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// Close removes every container, the network and the image of the run, found
// by label so that nothing half-created escapes. It waits for Start calls in
// flight, may be called more than once, and does not depend on any context:
// it is what runs after Ctrl-C.
func (r *Run) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	bs := r.backends
	r.backends = map[string]*Backend{}
	r.mu.Unlock()
	r.starting.Wait()

	for _, b := range bs {
		b.closeRemote()
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_, err := r.remove(ctx, make(client.Filters).Add("label", LabelRun+"="+r.id), func(map[string]string) bool { return true })
	r.provider.Close()
	if err != nil {
		return fmt.Errorf("container: close run %s: %w", r.id, err)
	}
	return nil
}

// newID returns a run id: 12 hex digits, valid in image tags, network and
// container names.
func newID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var errClosed = errors.New("run closed")
