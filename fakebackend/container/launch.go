package container

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// LabelRole is put on containers a Run launches besides its backends; its
// value is Spec.Role.
const LabelRole = "proxyspec.role"

// Spec describes a container a Run launches next to its backends — a proxy
// under test, typically — on the run's network, where it reaches the
// backends by name.
type Spec struct {
	// Name is the container's alias on the run's network and the end of its
	// container name: a DNS label, unique among the run's live containers.
	Name string
	// Role is what the container is for ("subject"), as a label.
	Role string
	// Image to run; "" runs the run's own image, whose entrypoint is the
	// proxyspec command (Cmd {"proxy"} runs the reference proxy).
	Image string
	// Entrypoint and Cmd override the image's when not nil.
	Entrypoint, Cmd []string
	// Env is KEY=VALUE pairs.
	Env []string
	// Port is a TCP port the container listens on, published on the host
	// (on loopback when the engine is local); 0 publishes nothing.
	Port int
	// Files are written into the container before it starts.
	Files []File
}

// File is a file written into a launched container.
type File struct {
	Path string // absolute, in the container
	Mode int64
	Data []byte
}

// Proc is a container launched by Run.Launch.
type Proc struct {
	run  *Run
	name string
	ctr  *testcontainers.DockerContainer
	addr string
}

// Launch creates and starts a container for s, labelled with the run like
// everything else it makes, and returns without waiting for anything to
// listen: what "ready" means is the caller's to say (see Proc.Exited for a
// container that died meanwhile). The caller closes the Proc; Run.Close
// removes it anyway.
func (r *Run) Launch(ctx context.Context, s Spec) (*Proc, error) {
	if !validName.MatchString(s.Name) {
		return nil, fmt.Errorf("container: launch %q: want a DNS label as name (a-z, 0-9, inner -)", s.Name)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("container: launch %s: %w", s.Name, errClosed)
	}
	r.starting.Add(1) // Close waits, then removes it by label
	r.mu.Unlock()
	defer r.starting.Done()

	image := s.Image
	if image == "" {
		image = r.image
	}
	// Never pull: there may be no registry, and an image the user named but
	// does not have is a mistake to report, not to fetch.
	if _, err := r.docker.ImageInspect(ctx, image); err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("container: launch %s: image %s is not on the engine (the kit never pulls: build or pull it first)", s.Name, image)
		}
		return nil, fmt.Errorf("container: launch %s: inspect image %s: %w", s.Name, image, err)
	}
	var port network.Port
	var exposed []string
	if s.Port != 0 {
		port = network.MustParsePort(strconv.Itoa(s.Port) + "/tcp")
		exposed = []string{port.String()}
	}
	var bind netip.Addr
	if r.bind != "" {
		bind = netip.MustParseAddr(r.bind)
	}
	files := make([]testcontainers.ContainerFile, len(s.Files))
	for i, f := range s.Files {
		files[i] = testcontainers.ContainerFile{Reader: bytes.NewReader(f.Data), ContainerFilePath: f.Path, FileMode: f.Mode}
	}
	req := testcontainers.GenericContainerRequest{
		Started: true,
		Logger:  r.logger,
		ContainerRequest: testcontainers.ContainerRequest{
			Image:          image,
			Name:           "proxyspec-" + r.id + "-" + s.Name,
			Entrypoint:     s.Entrypoint,
			Cmd:            s.Cmd,
			Env:            envMap(s.Env),
			Files:          files,
			Labels:         r.labels(map[string]string{LabelRole: s.Role}),
			ExposedPorts:   exposed,
			Networks:       []string{r.network},
			NetworkAliases: map[string][]string{r.network: {s.Name}},
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.NetworkMode = container.NetworkMode(r.network)
				if s.Port != 0 {
					hc.PortBindings = network.PortMap{port: {{HostIP: bind}}}
				}
			},
		},
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	if err != nil {
		err = fmt.Errorf("container: launch %s from %s: %w%s", s.Name, image, err, r.logsOf(req.Name))
		r.docker.ContainerRemove(context.WithoutCancel(ctx), req.Name, client.ContainerRemoveOptions{Force: true})
		return nil, err
	}
	p := &Proc{run: r, name: s.Name, ctr: c.(*testcontainers.DockerContainer)}
	if s.Port != 0 {
		ins, err := p.ctr.Inspect(ctx)
		if err == nil {
			p.addr, err = published(ins, port, r.host)
		}
		if err != nil {
			logs := p.Logs()
			p.Close()
			return nil, fmt.Errorf("container: launch %s: %w%s", s.Name, err, indent(logs))
		}
	}
	return p, nil
}

// envMap turns KEY=VALUE pairs into testcontainers' map; a later pair wins.
func envMap(kvs []string) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// published returns host:port where the container's port is published.
func published(ins *container.InspectResponse, p network.Port, host string) (string, error) {
	if ins.NetworkSettings != nil {
		for _, pb := range ins.NetworkSettings.Ports[p] {
			if pb.HostPort != "" && pb.HostPort != "0" {
				return host + ":" + pb.HostPort, nil
			}
		}
	}
	// A container that exited at once has nothing published.
	state := "unknown state"
	if ins.State != nil {
		state = fmt.Sprintf("%s, exit code %d", ins.State.Status, ins.State.ExitCode)
	}
	return "", fmt.Errorf("port %s is not published (%s)", p, state)
}

// Name is the container's alias on the run's network.
func (p *Proc) Name() string { return p.name }

// Addr is host:port where Spec.Port is reached from this host; "" when no
// port was published.
func (p *Proc) Addr() string { return p.addr }

// ContainerID is the Docker id of the container.
func (p *Proc) ContainerID() string { return p.ctr.GetContainerID() }

// Exited reports whether the container's process has ended, and its exit
// code if so.
func (p *Proc) Exited(ctx context.Context) (bool, int, error) {
	st, err := p.ctr.State(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("container: %s: state: %w", p.name, err)
	}
	return !st.Running && !st.Paused && !st.Restarting, st.ExitCode, nil
}

// logsLimit bounds what Logs keeps: the end of the output is what explains a
// failure.
const logsLimit = 64 << 10

// Logs returns the container's output so far, stdout and stderr
// interleaved as written (as far as Docker kept their order), at most its
// last 64 KiB; "" if there is none or it cannot be read.
func (p *Proc) Logs() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := p.run.docker.ContainerLogs(ctx, p.ContainerID(), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var out bytes.Buffer
	// One writer for both streams keeps them interleaved.
	stdcopy.StdCopy(&out, &out, rc)
	b := out.Bytes()
	if len(b) > logsLimit {
		b = b[len(b)-logsLimit:]
	}
	return string(b)
}

// Stop sends the container SIGTERM, then SIGKILL after grace, and returns
// once it has exited; the container stays, with its logs, until Close.
func (p *Proc) Stop(ctx context.Context, grace time.Duration) error {
	if err := p.ctr.Stop(ctx, &grace); err != nil && !isNotFound(err) {
		return fmt.Errorf("container: stop %s: %w", p.name, err)
	}
	return nil
}

// Close removes the container at once, whatever its state.
func (p *Proc) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if _, err := p.run.docker.ContainerRemove(ctx, p.ContainerID(), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("container: remove %s: %w", p.name, err)
	}
	return nil
}

// indent formats a container's output for an error message.
func indent(logs string) string {
	if logs == "" {
		return ""
	}
	var b bytes.Buffer
	b.WriteString("\ncontainer output:\n")
	io.WriteString(&b, logs)
	return b.String()
}

// NetworkIP is the container's address on the run's network.
func (p *Proc) NetworkIP(ctx context.Context) (netip.Addr, error) {
	ins, err := p.ctr.Inspect(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("container: %s: inspect: %w", p.name, err)
	}
	if ins.NetworkSettings != nil {
		if es := ins.NetworkSettings.Networks[p.run.network]; es != nil && es.IPAddress.IsValid() {
			return es.IPAddress, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("container: %s: not connected to %s", p.name, p.run.network)
}

// Gateway is the address of this host on the run's network: the source
// address the container sees for connections from this host, whether they
// come straight to its network address or through a published port.
func (p *Proc) Gateway(ctx context.Context) (netip.Addr, error) {
	ins, err := p.ctr.Inspect(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("container: %s: inspect: %w", p.name, err)
	}
	if ins.NetworkSettings != nil {
		if es := ins.NetworkSettings.Networks[p.run.network]; es != nil && es.Gateway.IsValid() {
			return es.Gateway, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("container: %s: no gateway on %s", p.name, p.run.network)
}
