package conformance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend/container"
)

// SelfImage, as Container's image, is the kit's own image (a static
// proxyspec binary FROM scratch, built for the run) running the reference
// proxy, `proxyspec proxy`: the suite measures the reference through a
// container, and the container machinery is checked against a proxy whose
// verdicts are known.
const SelfImage = "self"

// Container is a subject run from a Docker image, one container per
// topology, on the private network of the run's container backends (it
// needs Config.Backends = BackendsContainers). The container gets the
// PROXYSPEC_* environment of Command, with these differences:
//
//	PROXYSPEC_LISTEN    0.0.0.0:PORT, PORT being ContainerPort (default 8080)
//	PROXYSPEC_BACKENDS  in-network URLs, http://a:8080,http://b:8080
//
// PORT is published on 127.0.0.1 (where the engine is local) and the proxy
// is ready once a connection to it reaches the container. A container that
// exits first, or is not ready within the start timeout, is a setup failure
// that carries its output. The image is never pulled: it must be on the
// engine already.
func Container(image string, opts ...ContainerOption) Subject {
	s := &containerSubject{image: image, port: defaultContainerPort, startTimeout: 30 * time.Second, stopGrace: stopGrace}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ContainerOption configures a Container subject.
type ContainerOption func(*containerSubject)

// ContainerName names the subject in reports; default the image (for
// SelfImage, "reference-container").
func ContainerName(name string) ContainerOption {
	return func(s *containerSubject) { s.name = name }
}

// ContainerLacks lists the features the proxy cannot express.
func ContainerLacks(fs ...Feature) ContainerOption {
	return func(s *containerSubject) { s.lacks = append(s.lacks, fs...) }
}

// ContainerCmd replaces the image's command. Each argument is a template
// over TemplateData, as in CommandConfig.Args, with the listen address,
// backends and ConfigFile as seen inside the container (Dir is
// ConfigFile's directory).
func ContainerCmd(args ...string) ContainerOption {
	return func(s *containerSubject) { s.cmd = args }
}

// ContainerEntrypoint replaces the image's entrypoint (not a template).
func ContainerEntrypoint(args ...string) ContainerOption {
	return func(s *containerSubject) { s.entrypoint = args }
}

// ContainerEnv adds KEY=VALUE pairs to the container's environment, after
// the kit's own, so that they can override them.
func ContainerEnv(kv ...string) ContainerOption {
	return func(s *containerSubject) { s.env = append(s.env, kv...) }
}

// ContainerPort is the port the proxy listens on in the container; default
// 8080.
func ContainerPort(port int) ContainerOption {
	return func(s *containerSubject) { s.port = port }
}

// ContainerConfig renders text (a template over TemplateData, as
// CommandConfig.ConfigTemplate) for each topology and writes it into the
// container at file, an absolute path, before the proxy starts.
func ContainerConfig(file, text string) ContainerOption {
	return func(s *containerSubject) { s.configFile, s.configText = file, text }
}

// ContainerStartTimeout bounds the wait for the proxy to accept
// connections; default 30 s.
func ContainerStartTimeout(d time.Duration) ContainerOption {
	return func(s *containerSubject) { s.startTimeout = d }
}

const defaultContainerPort = 8080

type containerSubject struct {
	image, name            string
	lacks                  []Feature
	entrypoint, cmd, env   []string
	port                   int
	configFile, configText string
	startTimeout           time.Duration
	stopGrace              time.Duration

	mu  sync.Mutex
	run *container.Run // set by the container pool of the run
	seq atomic.Int64   // names the containers of this subject
}

func (s *containerSubject) Name() string {
	switch {
	case s.name != "":
		return s.name
	case s.image == SelfImage:
		return "reference-container"
	}
	return s.image
}

func (s *containerSubject) Lacks() []Feature { return s.lacks }

// attach gives the subject the run whose network holds the backends.
func (s *containerSubject) attach(r *container.Run) {
	s.mu.Lock()
	s.run = r
	s.mu.Unlock()
}

// errNeedsContainerBackends is the setup failure of a Container subject
// whose backends are not containers: nothing in its network could reach
// them.
var errNeedsContainerBackends = fmt.Errorf("a Container subject needs container backends (Config.Backends = %q, --backends %s)", BackendsContainers, BackendsContainers)

func (s *containerSubject) Start(ctx context.Context, t Topology) (Instance, error) {
	fail := func(err error, output string) error {
		return &StartError{Subject: s.Name(), Err: err, Output: output}
	}
	s.mu.Lock()
	run := s.run
	s.mu.Unlock()
	if run == nil {
		return nil, fail(errNeedsContainerBackends, "")
	}
	spec, err := s.spec(run, t)
	if err != nil {
		return nil, fail(err, "")
	}
	p, err := run.Launch(ctx, spec)
	if err != nil {
		return nil, fail(err, "")
	}
	inst := &containerInstance{proc: p, port: s.port, grace: s.stopGrace}
	if err := inst.ready(ctx, s.startTimeout); err != nil {
		out := p.Logs()
		p.Close()
		return nil, fail(err, out)
	}
	if gw, err := p.Gateway(ctx); err == nil {
		inst.clientIP = gw.Unmap().String()
	}
	return inst, nil
}

// spec is the container to launch for t.
func (s *containerSubject) spec(run *container.Run, t Topology) (container.Spec, error) {
	listen := net.JoinHostPort("0.0.0.0", strconv.Itoa(s.port))
	data := TemplateData{
		Listen:           listen,
		ListenHost:       "0.0.0.0",
		ListenPort:       s.port,
		Backends:         t.Backends,
		PathPrefix:       t.PathPrefix,
		ConnectTimeoutMS: t.ConnectTimeout.Milliseconds(),
		ReadTimeoutMS:    t.ReadTimeout.Milliseconds(),
		ConfigFile:       s.configFile,
	}
	if s.configFile != "" {
		data.Dir = path.Dir(s.configFile)
	}
	spec := container.Spec{
		Name:       "subject-" + strconv.FormatInt(s.seq.Add(1), 10),
		Role:       "subject",
		Image:      s.image,
		Entrypoint: s.entrypoint,
		Env:        append(contractEnv(data), s.env...),
		Port:       s.port,
	}
	if s.image == SelfImage {
		spec.Image = run.Image()
		if s.cmd == nil {
			spec.Cmd = []string{"proxy"}
		}
	}
	for i, a := range s.cmd {
		arg, err := render(fmt.Sprintf("argument %d", i), a, data)
		if err != nil {
			return spec, err
		}
		spec.Cmd = append(spec.Cmd, arg)
	}
	if s.configFile != "" {
		if !path.IsAbs(s.configFile) {
			return spec, fmt.Errorf("config file %q: want an absolute path in the container", s.configFile)
		}
		cfg, err := render("config template", s.configText, data)
		if err != nil {
			return spec, err
		}
		spec.Files = []container.File{{Path: s.configFile, Mode: 0o644, Data: []byte(cfg)}}
	}
	return spec, nil
}

// containerInstance is a running Container subject.
type containerInstance struct {
	proc     *container.Proc
	port     int
	grace    time.Duration
	clientIP string

	mu     sync.Mutex
	output string // the logs, kept once the container is gone
	gone   bool
}

func (i *containerInstance) Addr() string { return i.proc.Addr() }

// ClientIP is the address the proxy sees the kit's clients connect from:
// this host's on the run's network, not the loopback address they dial
// (Docker forwards the published port from there). "" when unknown.
func (i *containerInstance) ClientIP() string { return i.clientIP }

func (i *containerInstance) Output() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.gone {
		return i.output
	}
	return i.proc.Logs()
}

// Stop stops the container (SIGTERM, SIGKILL after the grace period) and
// removes it, keeping its output.
func (i *containerInstance) Stop(ctx context.Context) error {
	err := i.proc.Stop(ctx, i.grace)
	out := i.proc.Logs()
	err = errors.Join(err, i.proc.Close())
	i.mu.Lock()
	i.output, i.gone = out, true
	i.mu.Unlock()
	return err
}

// ready waits until the proxy in the container accepts connections, the
// container exits, or the timeout passes.
func (i *containerInstance) ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pr := prober{mapped: i.proc.Addr()}
	if ip, err := i.proc.NetworkIP(ctx); err == nil {
		pr.direct = net.JoinHostPort(ip.String(), strconv.Itoa(i.port))
	}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for {
		if pr.accepting(ctx) {
			return nil
		}
		exited, code, err := i.proc.Exited(ctx)
		if err == nil && exited {
			return fmt.Errorf("container %s exited with status %d before accepting connections on port %d", i.proc.Name(), code, i.port)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %s did not accept connections on port %d (published at %s) within %v: %w", i.proc.Name(), i.port, i.proc.Addr(), timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// prober tells whether something listens on a container's port.
//
// Through the published port it cannot tell at once: Docker's userland
// proxy accepts every connection to a published port, then connects to the
// container and, when nothing listens there, closes the connection it
// accepted. So a probe through the published port waits a moment for that
// close; a connection still open after mappedSettle is one the container
// accepted.
//
// Where this host routes to the container's network (a local engine on
// Linux) the probe connects to the container's address directly and the
// kernel's answer is final: refused means nothing listens yet.
type prober struct {
	direct   string // container-ip:port; "" when this host does not route there
	mapped   string // the published host:port
	indirect bool   // the direct address proved unreachable
}

// mappedSettle is how long a connection through the published port must stay
// open to count as accepted by the container. Docker's proxy dials the
// container as soon as it accepts, and a refusal inside the engine's host
// comes back in microseconds: this is orders of magnitude more.
const mappedSettle = 250 * time.Millisecond

func (p *prober) accepting(ctx context.Context) bool {
	var d net.Dialer
	if p.direct != "" && !p.indirect {
		attempt, cancel := context.WithTimeout(ctx, readyPoll*5)
		c, err := d.DialContext(attempt, "tcp", p.direct)
		cancel()
		if err == nil {
			c.Close()
			return true
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return false
		}
		p.indirect = true
	}
	attempt, cancel := context.WithTimeout(ctx, readyPoll*5)
	c, err := d.DialContext(attempt, "tcp", p.mapped)
	cancel()
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(mappedSettle))
	var b [1]byte
	n, err := c.Read(b[:])
	if n > 0 {
		return true // the proxy itself spoke first
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
