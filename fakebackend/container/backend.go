package container

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// Backend is a fake backend in a container of a Run. It is a
// fakebackend.Backend whose URL is the host-mapped one, plus the failures
// only a container can show. Stop/Start and Disconnect/Reconnect change the
// mapped ports (Docker allocates new ones): URL, Addr and ControlURL follow,
// and recorded requests are lost on Stop (the process restarts); NetworkURL,
// the name on the run's network, never changes.
type Backend struct {
	run  *Run
	name string
	ctr  *testcontainers.DockerContainer

	mu     sync.RWMutex
	remote *fakebackend.Remote
}

var _ fakebackend.Backend = (*Backend)(nil)

// validName is a DNS label: the name is the backend's alias on the network.
var validName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// startTimeout bounds how long a backend container may take to answer its
// control API after being started.
const startTimeout = 30 * time.Second

// stopTimeout is how long a backend gets to stop on SIGTERM before SIGKILL.
const stopTimeout = 5 * time.Second

// Start starts a backend container named name (a DNS label, unique in the
// run), reachable as NAME:8080 on the run's network and through ports mapped
// on the host, and returns it once its control API answers.
func (r *Run) Start(ctx context.Context, name string) (*Backend, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("container: backend name %q: want a DNS label (a-z, 0-9, inner -)", name)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("container: start backend %s: %w", name, errClosed)
	}
	if _, dup := r.backends[name]; dup {
		r.mu.Unlock()
		return nil, fmt.Errorf("container: backend %s already started in run %s", name, r.id)
	}
	r.backends[name] = nil // reserved
	r.starting.Add(1)
	r.mu.Unlock()
	defer r.starting.Done()

	b, err := r.start(ctx, name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		delete(r.backends, name)
		return nil, err
	}
	r.backends[name] = b
	return b, nil
}

func (r *Run) start(ctx context.Context, name string) (*Backend, error) {
	data := network.MustParsePort(strconv.Itoa(DataPort) + "/tcp")
	ctl := network.MustParsePort(strconv.Itoa(ControlPort) + "/tcp")
	var bind netip.Addr
	if r.bind != "" {
		bind = netip.MustParseAddr(r.bind)
	}
	req := testcontainers.GenericContainerRequest{
		Started: true,
		Logger:  r.logger,
		ContainerRequest: testcontainers.ContainerRequest{
			Image: r.image,
			Name:  "proxyspec-" + r.id + "-" + name,
			Cmd: []string{"fakebackend",
				"--name", name,
				"--listen", fmt.Sprintf("0.0.0.0:%d", DataPort),
				"--control", fmt.Sprintf("0.0.0.0:%d", ControlPort),
			},
			Labels:         r.labels(map[string]string{LabelBackend: name}),
			ExposedPorts:   []string{data.String(), ctl.String()},
			Networks:       []string{r.network},
			NetworkAliases: map[string][]string{r.network: {name}},
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.NetworkMode = container.NetworkMode(r.network)
				hc.PortBindings = network.PortMap{
					data: {{HostIP: bind}},
					ctl:  {{HostIP: bind}},
				}
			},
			WaitingFor: wait.ForHTTP("/info").WithPort(ctl.String()).
				WithStartupTimeout(startTimeout).WithPollInterval(50 * time.Millisecond),
		},
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	if err != nil {
		err = fmt.Errorf("container: start backend %s: %w%s", name, err, r.logsOf(req.Name))
		r.docker.ContainerRemove(context.WithoutCancel(ctx), req.Name, client.ContainerRemoveOptions{Force: true})
		return nil, err
	}
	b := &Backend{run: r, name: name, ctr: c.(*testcontainers.DockerContainer)}
	if err := b.redial(ctx); err != nil {
		r.docker.ContainerRemove(context.WithoutCancel(ctx), req.Name, client.ContainerRemoveOptions{Force: true})
		return nil, err
	}
	return b, nil
}

// logsOf returns the tail of a container's output, to explain why it did not
// come up; "" when there is none.
func (r *Run) logsOf(ctr string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := r.docker.ContainerLogs(ctx, ctr, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "20"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	out, _ := io.ReadAll(io.LimitReader(rc, 4<<10))
	if len(out) == 0 {
		return ""
	}
	return "\ncontainer output (multiplexed):\n" + string(out)
}

// redial reads the mapped ports afresh and points the Remote at them.
func (b *Backend) redial(ctx context.Context) error {
	ins, err := b.ctr.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("container: backend %s: inspect: %w", b.name, err)
	}
	dataAddr, err := b.mapped(ins, DataPort)
	if err != nil {
		return err
	}
	ctlAddr, err := b.mapped(ins, ControlPort)
	if err != nil {
		return err
	}
	rm, err := fakebackend.DialContext(ctx, "http://"+ctlAddr, fakebackend.WithURL("http://"+dataAddr))
	if err != nil {
		return fmt.Errorf("container: backend %s: %w", b.name, err)
	}
	b.mu.Lock()
	old := b.remote
	b.remote = rm
	b.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// mapped returns host:port where the container's TCP port is published.
func (b *Backend) mapped(ins *container.InspectResponse, port int) (string, error) {
	p := network.MustParsePort(strconv.Itoa(port) + "/tcp")
	if ins.NetworkSettings != nil {
		for _, pb := range ins.NetworkSettings.Ports[p] {
			if pb.HostPort != "" && pb.HostPort != "0" {
				return b.run.host + ":" + pb.HostPort, nil
			}
		}
	}
	return "", fmt.Errorf("container: backend %s: port %s is not published (stopped or disconnected?)", b.name, p)
}

func (b *Backend) current() *fakebackend.Remote {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.remote
}

// Name implements fakebackend.Backend.
func (b *Backend) Name() string { return b.name }

// URL implements fakebackend.Backend: the data plane as reached from this
// host, through a mapped port.
func (b *Backend) URL() string { return b.current().URL() }

// Addr implements fakebackend.Backend: URL's host:port.
func (b *Backend) Addr() string { return b.current().Addr() }

// NetworkURL is the data plane as reached from another container on the
// run's network: http://NAME:8080.
func (b *Backend) NetworkURL() string { return fmt.Sprintf("http://%s:%d", b.name, DataPort) }

// ControlURL is the control API as reached from this host.
func (b *Backend) ControlURL() string { return b.current().ControlURL() }

// ContainerID is the Docker id of the backend's container.
func (b *Backend) ContainerID() string { return b.ctr.GetContainerID() }

// NetworkIP is the container's address on the run's network, while it is
// connected to it.
func (b *Backend) NetworkIP(ctx context.Context) (netip.Addr, error) {
	ins, err := b.ctr.Inspect(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("container: backend %s: inspect: %w", b.name, err)
	}
	if ins.NetworkSettings != nil {
		if es := ins.NetworkSettings.Networks[b.run.network]; es != nil && es.IPAddress.IsValid() {
			return es.IPAddress, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("container: backend %s: not connected to %s", b.name, b.run.network)
}

// Requests implements fakebackend.Backend.
func (b *Backend) Requests(ctx context.Context) ([]fakebackend.Request, error) {
	return b.current().Requests(ctx)
}

// WaitRequests implements fakebackend.Backend.
func (b *Backend) WaitRequests(ctx context.Context, n int) ([]fakebackend.Request, error) {
	return b.current().WaitRequests(ctx, n)
}

// Conns implements fakebackend.Backend.
func (b *Backend) Conns(ctx context.Context) ([]fakebackend.Conn, error) {
	return b.current().Conns(ctx)
}

// Stats implements fakebackend.Backend.
func (b *Backend) Stats(ctx context.Context) (fakebackend.Stats, error) {
	return b.current().Stats(ctx)
}

// SetDefault implements fakebackend.Backend.
func (b *Backend) SetDefault(ctx context.Context, bh fakebackend.Behaviour) error {
	return b.current().SetDefault(ctx, bh)
}

// Enqueue implements fakebackend.Backend.
func (b *Backend) Enqueue(ctx context.Context, bs ...fakebackend.Behaviour) error {
	return b.current().Enqueue(ctx, bs...)
}

// SetMode implements fakebackend.Backend.
func (b *Backend) SetMode(ctx context.Context, m fakebackend.Mode) error {
	return b.current().SetMode(ctx, m)
}

// Reset implements fakebackend.Backend.
func (b *Backend) Reset(ctx context.Context) error { return b.current().Reset(ctx) }

// Stop stops the container (SIGTERM, then SIGKILL after a few seconds):
// connections to its mapped ports are refused, its name on the network no
// longer resolves. Start brings it back, with an empty record.
func (b *Backend) Stop(ctx context.Context) error {
	d := stopTimeout
	if err := b.ctr.Stop(ctx, &d); err != nil {
		return fmt.Errorf("container: stop backend %s: %w", b.name, err)
	}
	return nil
}

// Start starts a stopped backend again and returns once its control API
// answers on the newly mapped ports.
func (b *Backend) Start(ctx context.Context) error {
	if err := b.ctr.Start(ctx); err != nil {
		return fmt.Errorf("container: start backend %s: %w%s", b.name, err, b.run.logsOf(b.ctr.GetContainerID()))
	}
	return b.redial(ctx)
}

// Pause freezes the container's processes: its kernel still completes TCP
// handshakes, so connections are accepted, but nothing is ever read or
// answered — the control API included — until Unpause.
func (b *Backend) Pause(ctx context.Context) error {
	if _, err := b.run.docker.ContainerPause(ctx, b.ContainerID(), client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("container: pause backend %s: %w", b.name, err)
	}
	return nil
}

// Unpause thaws a paused backend; what was sent meanwhile is then read and
// answered.
func (b *Backend) Unpause(ctx context.Context) error {
	if _, err := b.run.docker.ContainerUnpause(ctx, b.ContainerID(), client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("container: unpause backend %s: %w", b.name, err)
	}
	return nil
}

// Disconnect takes the container off the run's network, its only one: from
// other containers, and from this host at its network address, it is
// unreachable (no route, after ARP gives up) and its name no longer
// resolves; its mapped ports are withdrawn, so from the host they refuse.
// The process keeps running and keeps its record.
func (b *Backend) Disconnect(ctx context.Context) error {
	if _, err := b.run.docker.NetworkDisconnect(ctx, b.run.netID, client.NetworkDisconnectOptions{Container: b.ContainerID()}); err != nil {
		return fmt.Errorf("container: disconnect backend %s from %s: %w", b.name, b.run.network, err)
	}
	return nil
}

// Reconnect puts a disconnected backend back on the run's network under its
// name, and follows its ports, which Docker publishes anew.
func (b *Backend) Reconnect(ctx context.Context) error {
	_, err := b.run.docker.NetworkConnect(ctx, b.run.netID, client.NetworkConnectOptions{
		Container:      b.ContainerID(),
		EndpointConfig: &network.EndpointSettings{Aliases: []string{b.name}},
	})
	if err != nil {
		return fmt.Errorf("container: reconnect backend %s to %s: %w", b.name, b.run.network, err)
	}
	return b.redial(ctx)
}

// Close removes the backend's container. Run.Close removes it anyway.
func (b *Backend) Close() error {
	b.closeRemote()
	b.run.mu.Lock()
	if b.run.backends[b.name] == b {
		delete(b.run.backends, b.name)
	}
	b.run.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if _, err := b.run.docker.ContainerRemove(ctx, b.ContainerID(), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("container: remove backend %s: %w", b.name, err)
	}
	return nil
}

func (b *Backend) closeRemote() {
	if rm := b.current(); rm != nil {
		rm.Close()
	}
}
