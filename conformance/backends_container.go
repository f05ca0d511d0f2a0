package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2"

	"github.com/proxyspec/proxyspec/fakebackend"
	"github.com/proxyspec/proxyspec/fakebackend/container"
)

// containerPool runs the fake backends of every spec in containers of one
// container.Run per process (per Ginkgo process under ginkgo -p): one
// image, one private network, and a container per backend name, kept for the
// whole run. Starting a container costs about half a second, which per spec
// would make a run of the suite take minutes; a pooled backend costs a
// Reset.
//
// Which URL a subject gets for a backend depends on where the subject runs
// and what this host can reach:
//   - a Container subject, on the run's network: http://a:8080, the alias;
//   - a subject on this host, where it routes to the run's network (a local
//     engine on Linux): the container's address on that network,
//     http://172.x.y.z:8080. Connections then go straight to the backend's
//     kernel, so Refuse is a refusal and Blackhole a handshake that never
//     completes, as with in-process backends;
//   - otherwise (Docker Desktop, a remote engine, or
//     PROXYSPEC_CONTAINER_URLS=mapped): the port published on this host.
//     Docker's proxy behind it completes every handshake itself and only
//     then connects to the container, so a refused connection looks
//     accepted-then-closed and a blackholed one never times out at connect:
//     a spec that sets Refuse or Blackhole is reported as not supported
//     there.
//
// A backend's name is the spec's name for it ("a", "b", ...): it is what the
// fake backend sends in X-Proxyspec-Backend and what specs check. It is also
// the container's alias on the run's network, which is unique because the
// network is this process's alone and a process runs one spec at a time.
type containerPool struct {
	run *container.Run
	// inNetwork says the subject runs on the run's network and reaches the
	// backends by alias.
	inNetwork bool
	// reach, for a subject on this host, is how it reaches backends:
	// reachDirect or reachMapped, decided with the first backend.
	reachOnce sync.Once
	reach     string

	mu     sync.Mutex
	idle   map[string]*container.Backend
	closed bool

	// closeOnce makes a close that runs while another does wait for it.
	closeOnce sync.Once
	closeErr  error

	stopSignals func()
}

// How a subject on this host reaches container backends.
const (
	reachDirect = "direct" // the container's address on the run's network
	reachMapped = "mapped" // the port published on this host
)

// containerURLsEnv, set to "mapped", makes subjects on this host use the
// published ports even where the run's network is routable.
const containerURLsEnv = "PROXYSPEC_CONTAINER_URLS"

// poolResetTimeout bounds resetting a pooled backend before it is handed out
// again; a backend that takes longer is replaced.
const poolResetTimeout = 5 * time.Second

// poolStartTimeout bounds building the image and creating the network: the
// first build of the proxyspec binary may take a minute on a slow machine.
const poolStartTimeout = 3 * time.Minute

// directProbeTimeout bounds the check that this host routes to the run's
// network: a connection to a backend there completes in microseconds.
const directProbeTimeout = time.Second

func newContainerPool(cfg *Config) (backendPool, error) {
	reach := ""
	switch v := os.Getenv(containerURLsEnv); v {
	case "", reachMapped:
		reach = v
	default:
		return nil, fmt.Errorf("conformance: %s=%q: want %q or nothing", containerURLsEnv, v, reachMapped)
	}
	interrupted, release := holdSignals()
	// The pool is made outside any spec's context: a signal is what stops
	// the image build, and NewRun then removes what it made.
	ctx, cancel := context.WithTimeout(context.Background(), poolStartTimeout)
	defer cancel()
	go func() {
		select {
		case <-interrupted:
			cancel()
		case <-ctx.Done():
		}
	}()
	run, err := container.NewRun(ctx, container.WithLog(containerLog()))
	if err != nil {
		release()
		return nil, fmt.Errorf("conformance: container backends: %w", err)
	}
	p := &containerPool{run: run, reach: reach, idle: map[string]*container.Backend{}, stopSignals: release}
	if cs, ok := cfg.Subject.(*containerSubject); ok {
		cs.attach(run)
		p.inNetwork = true
	}
	return p, nil
}

// containerLogEnv, set to 1, sends what the container run does (and
// testcontainers' log) to stderr.
const containerLogEnv = "PROXYSPEC_CONTAINER_LOG"

func containerLog() io.Writer {
	if os.Getenv(containerLogEnv) == "1" {
		return os.Stderr
	}
	return io.Discard
}

// holdSignals keeps SIGINT and SIGTERM from killing the process until
// release, so that the run's containers, network and image are always
// removed; interrupted is closed at the first signal. Ginkgo, which gets the
// signals too, interrupts the running spec, runs its cleanup and skips the
// rest; the end of the suite then closes the pool. Without the hold, a
// second Ctrl-C during that close (Ginkgo stops listening when the suite
// returns) would end the process half-way. (Closing the run from the signal
// itself would race with the interrupted spec's own cleanup.)
func holdSignals() (interrupted <-chan struct{}, release func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			close(first)
		case <-done:
		}
	}()
	var once sync.Once
	return first, func() {
		once.Do(func() {
			signal.Stop(sig)
			close(done)
		})
	}
}

// start hands out the backend named name: the pooled one, reset, or a new
// container.
func (p *containerPool) start(ctx context.Context, name string) (fakebackend.Backend, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("conformance: container backends: the run is closed (interrupted?)")
	}
	b := p.idle[name]
	delete(p.idle, name)
	p.mu.Unlock()

	if b != nil {
		rctx, cancel := context.WithTimeout(ctx, poolResetTimeout)
		err := b.Reset(rctx)
		cancel()
		if err == nil {
			return p.lend(b), nil
		}
		b.Close() // and start another
	}
	b, err := p.run.Start(ctx, name)
	if err != nil {
		return nil, err
	}
	p.reachOnce.Do(func() { p.decideReach(ctx, b) })
	return p.lend(b), nil
}

// decideReach finds out, with a running backend, whether this host routes to
// the run's network.
func (p *containerPool) decideReach(ctx context.Context, b *container.Backend) {
	if p.inNetwork || p.reach != "" {
		return
	}
	p.reach = reachMapped
	ip, err := b.NetworkIP(ctx)
	if err != nil {
		return
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, directProbeTimeout)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(container.DataPort)))
	if err != nil {
		return
	}
	c.Close()
	// The probe's connection is in the backend's record: start resets it.
	p.reach = reachDirect
}

func (p *containerPool) lend(b *container.Backend) *pooledBackend {
	return &pooledBackend{Backend: b, pool: p}
}

// put takes a backend back after its spec. One that a spec stopped, paused
// or cut off is replaced rather than restored: connections made meanwhile
// (queued in a frozen kernel, or retried by Docker's proxy) could still
// deliver the old spec's requests to the next one.
func (p *containerPool) put(b *container.Backend, tainted bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if tainted || p.closed || p.idle[b.Name()] != nil {
		return b.Close()
	}
	p.idle[b.Name()] = b
	return nil
}

func (p *containerPool) url(b fakebackend.Backend) string {
	cb := b.(*pooledBackend)
	switch {
	case p.inNetwork:
		return cb.NetworkURL()
	case p.reach == reachDirect:
		if ip, err := cb.NetworkIP(context.Background()); err == nil {
			return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(container.DataPort))
		}
	}
	return cb.URL()
}

// close removes the run's containers, network and image. It may be called
// more than once.
func (p *containerPool) close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.idle = map[string]*container.Backend{}
		p.mu.Unlock()
		p.closeErr = p.run.Close()
		p.stopSignals()
	})
	return p.closeErr
}

// pooledBackend is a container backend lent to one spec. It has every method
// of container.Backend, so a spec may Stop, Pause or Disconnect it; Close
// gives it back to the pool.
type pooledBackend struct {
	*container.Backend
	pool *containerPool

	mu      sync.Mutex
	tainted bool
	closed  bool
}

func (b *pooledBackend) taint() {
	b.mu.Lock()
	b.tainted = true
	b.mu.Unlock()
}

// SetMode implements fakebackend.Backend. Through a published port neither
// a refusal nor a blackhole can be shown: Docker's proxy completes every
// handshake, then closes the connection or holds it open. A proxy would be
// judged on something else than the spec says, so there the spec is
// reported as not supported. Elsewhere a blackhole leaves nothing behind:
// the SYNs it dropped are retried by the subject's sockets only, which die
// with it.
func (b *pooledBackend) SetMode(ctx context.Context, m fakebackend.Mode) error {
	if m != fakebackend.Serve && !b.pool.inNetwork && b.pool.reach == reachMapped {
		notSupported(fmt.Sprintf("backend %s cannot be put in mode %s behind a port Docker publishes: its proxy completes every handshake (this host does not route to the container network, or %s=mapped)", b.Name(), m, containerURLsEnv))
	}
	return b.Backend.SetMode(ctx, m)
}

// notSupported ends the running spec as not supported: the kit cannot set up
// what it needs here, which says nothing about the proxy.
func notSupported(why string) {
	ginkgo.AddReportEntry(entryState, string(StateNotSupported), ginkgo.ReportEntryVisibilityNever)
	ginkgo.Skip(notSupportedPrefix + " " + why)
}

// Stop implements container.Backend's Stop; the container is replaced after
// the spec.
func (b *pooledBackend) Stop(ctx context.Context) error {
	b.taint()
	return b.Backend.Stop(ctx)
}

// Pause implements container.Backend's Pause; the container is replaced
// after the spec.
func (b *pooledBackend) Pause(ctx context.Context) error {
	b.taint()
	return b.Backend.Pause(ctx)
}

// Disconnect implements container.Backend's Disconnect; the container is
// replaced after the spec.
func (b *pooledBackend) Disconnect(ctx context.Context) error {
	b.taint()
	return b.Backend.Disconnect(ctx)
}

// Close implements fakebackend.Backend: the container goes back to the pool.
func (b *pooledBackend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	tainted := b.tainted
	b.mu.Unlock()
	return b.pool.put(b.Backend, tainted)
}
