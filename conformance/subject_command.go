package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Command is a subject run as a process, configured by c: any program that follows the
// PROXYSPEC_* environment contract, or any product configured from a
// template. For each topology the kit picks a free loopback port and a
// private temporary directory, renders ConfigTemplate (if any) into it,
// expands the command line, and starts the process in its own process group
// with these variables set:
//
//	PROXYSPEC_LISTEN              host:port to listen on
//	PROXYSPEC_BACKENDS            backend URLs, comma-separated, in order
//	PROXYSPEC_PATH_PREFIX         "" proxies everything
//	PROXYSPEC_CONNECT_TIMEOUT_MS  connect timeout in milliseconds
//	PROXYSPEC_READ_TIMEOUT_MS     read timeout in milliseconds
//
// The templates (text/template) see a TemplateData. The proxy is ready once
// its port accepts connections; it is stopped with SIGTERM to its group,
// then SIGKILL after StopGrace, and the directory is removed.
func Command(c CommandConfig) Subject { return commandSubject{c} }

// CommandConfig describes a Command subject.
type CommandConfig struct {
	// Name identifies the subject in reports; default: the program's base name.
	Name string
	// CommandLine is a template of the command, split shell-like (quotes
	// and backslashes) after expansion, e.g.
	// "nginx -p {{.Dir}} -c {{.ConfigFile}} -g 'daemon off;'".
	CommandLine string
	// Args is an alternative to CommandLine: the program and its arguments,
	// each a template, not split.
	Args []string
	// ConfigTemplate is the text of a config file template, rendered to
	// Dir/ConfigName before the start; empty means no config file.
	ConfigTemplate string
	// ConfigName is the rendered file's name; default "proxy.conf".
	ConfigName string
	// Lacks lists the features the product cannot express.
	Lacks []Feature
	// Env is added to the process's environment (KEY=VALUE), after the
	// kit's own variables, so it can override them.
	Env []string
	// WorkDir is the process's working directory; default the kit's.
	WorkDir string
	// StartTimeout bounds the wait for the port to accept; default 15 s.
	StartTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL; default 3 s.
	StopGrace time.Duration
}

// TemplateData is what the config template and the command line see.
type TemplateData struct {
	Listen           string     // "127.0.0.1:PORT"
	ListenHost       string     // "127.0.0.1"
	ListenPort       int        // PORT
	Backends         []Endpoint // in order
	PathPrefix       string     // "" proxies everything
	ConnectTimeoutMS int64
	ReadTimeoutMS    int64
	Dir              string // the private directory, removed after the stop
	ConfigFile       string // Dir/ConfigName, whether or not a template is set
}

type commandSubject struct{ c CommandConfig }

func (s commandSubject) Name() string     { return s.c.name() }
func (s commandSubject) Lacks() []Feature { return s.c.Lacks }
func (s commandSubject) Start(ctx context.Context, t Topology) (Instance, error) {
	return s.c.start(ctx, t)
}

func (c CommandConfig) name() string {
	if c.Name != "" {
		return c.Name
	}
	prog := ""
	if len(c.Args) > 0 {
		prog = c.Args[0]
	} else if f := strings.Fields(c.CommandLine); len(f) > 0 {
		prog = f[0]
	}
	return filepath.Base(prog)
}

func (c CommandConfig) start(ctx context.Context, t Topology) (_ Instance, err error) {
	fail := func(out *tail, format string, args ...any) error {
		se := &StartError{Subject: c.name(), Err: fmt.Errorf(format, args...)}
		if out != nil {
			se.Output = out.String()
		}
		return se
	}
	dir, err := os.MkdirTemp("", "proxyspec-"+safeName(c.name())+"-")
	if err != nil {
		return nil, fail(nil, "private directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	port, err := freePort(ctx)
	if err != nil {
		return nil, fail(nil, "picking a port: %w", err)
	}
	data := c.data(t, dir, port)
	if c.ConfigTemplate != "" {
		cfg, err := render("config template", c.ConfigTemplate, data)
		if err != nil {
			return nil, fail(nil, "%w", err)
		}
		if err := os.WriteFile(data.ConfigFile, []byte(cfg), 0o600); err != nil {
			return nil, fail(nil, "writing the config: %w", err)
		}
	}
	argv, err := c.argv(data)
	if err != nil {
		return nil, fail(nil, "%w", err)
	}

	out := newTail(outputLimit)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.WorkDir
	cmd.Env = append(os.Environ(), contractEnv(data)...)
	cmd.Env = append(cmd.Env, c.Env...)
	// Our own pipe rather than exec's: exec's Wait would also wait for
	// every grandchild holding the pipe, and the leader's exit is what Stop
	// needs to see.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fail(nil, "output pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	ownGroup(cmd)
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fail(out, "starting %q: %w", argv[0], err)
	}
	p := &process{cmd: cmd, out: out, dir: dir, addr: data.Listen, grace: or(c.StopGrace, stopGrace),
		exited: make(chan struct{}), drained: make(chan struct{})}
	go p.wait()
	go func() {
		io.Copy(out, pr)
		pr.Close()
		close(p.drained)
	}()

	if err := p.ready(ctx, or(c.StartTimeout, 15*time.Second)); err != nil {
		p.Stop(context.Background())
		return nil, fail(out, "%w", err)
	}
	return p, nil
}

func (c CommandConfig) data(t Topology, dir string, port int) TemplateData {
	name := c.ConfigName
	if name == "" {
		name = "proxy.conf"
	}
	return TemplateData{
		Listen:           net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		ListenHost:       "127.0.0.1",
		ListenPort:       port,
		Backends:         t.Backends,
		PathPrefix:       t.PathPrefix,
		ConnectTimeoutMS: t.ConnectTimeout.Milliseconds(),
		ReadTimeoutMS:    t.ReadTimeout.Milliseconds(),
		Dir:              dir,
		ConfigFile:       filepath.Join(dir, name),
	}
}

// argv expands the command line (or each of Args) over data.
func (c CommandConfig) argv(data TemplateData) ([]string, error) {
	if len(c.Args) > 0 {
		argv := make([]string, len(c.Args))
		for i, a := range c.Args {
			s, err := render(fmt.Sprintf("argument %d", i), a, data)
			if err != nil {
				return nil, err
			}
			argv[i] = s
		}
		return argv, nil
	}
	line, err := render("command line", c.CommandLine, data)
	if err != nil {
		return nil, err
	}
	argv, err := SplitCommandLine(line)
	if err != nil {
		return nil, fmt.Errorf("command line %q: %w", line, err)
	}
	if len(argv) == 0 {
		return nil, errors.New("empty command line")
	}
	return argv, nil
}

// contractEnv is the PROXYSPEC_* environment of the subject contract.
func contractEnv(d TemplateData) []string {
	urls := make([]string, len(d.Backends))
	for i, b := range d.Backends {
		urls[i] = b.URL
	}
	return []string{
		"PROXYSPEC_LISTEN=" + d.Listen,
		"PROXYSPEC_BACKENDS=" + strings.Join(urls, ","),
		"PROXYSPEC_PATH_PREFIX=" + d.PathPrefix,
		"PROXYSPEC_CONNECT_TIMEOUT_MS=" + strconv.FormatInt(d.ConnectTimeoutMS, 10),
		"PROXYSPEC_READ_TIMEOUT_MS=" + strconv.FormatInt(d.ReadTimeoutMS, 10),
	}
}

// render executes a template; a key missing from the data is an error, not
// an empty string in a config file.
func render(what, text string, data TemplateData) (string, error) {
	tmpl, err := template.New(what).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("parsing the %s: %w", what, err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("rendering the %s: %w", what, err)
	}
	return b.String(), nil
}

// freePort picks a free loopback port for the proxy to listen on. The port
// is probed and released, so another socket could take it before the proxy
// binds it. Asking the kernel (port 0) made that happen a few times per run:
// it hands out the same ephemeral range (32768-60999 on Linux, 49152-65535
// on BSD and macOS) to the run's own fake backends and to every outgoing
// connection, so a port released here came back as the local port of the
// proxy's connection to a backend. Ports from 20000 to 31999 are below all
// of those ranges: only a program binding them by number can take them.
func freePort(ctx context.Context) (int, error) {
	const low, n = 20000, 12000
	var lc net.ListenConfig
	var err error
	for range 20 {
		port := low + rand.IntN(n)
		var ln net.Listener
		ln, err = lc.Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port in %d-%d: %w", low, low+n-1, err)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r == ' ' {
			return '-'
		}
		return r
	}, s)
}

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// process is a running Command.
type process struct {
	cmd     *exec.Cmd
	out     *tail
	dir     string
	addr    string
	grace   time.Duration
	exited  chan struct{}
	waitErr error
	drained chan struct{} // the output pipe reached EOF
}

func (p *process) Addr() string   { return p.addr }
func (p *process) Output() string { return p.out.String() }

func (p *process) wait() {
	p.waitErr = p.cmd.Wait()
	close(p.exited)
}

// readyPoll is how often the port is tried while a subject starts.
const readyPoll = 20 * time.Millisecond

// ready waits until the port accepts a connection, the process exits, or
// the timeout passes.
func (p *process) ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var d net.Dialer
	for {
		attempt, stop := context.WithTimeout(ctx, readyPoll*5)
		conn, err := d.DialContext(attempt, "tcp", p.addr)
		stop()
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-p.exited:
			p.drain()
			return fmt.Errorf("exited before accepting connections on %s: %v", p.addr, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("did not accept connections on %s within %v: %w", p.addr, timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop sends SIGTERM to the process group, SIGKILL after the grace period,
// and removes the private directory.
func (p *process) Stop(ctx context.Context) error {
	defer os.RemoveAll(p.dir)
	signalGroup(p.cmd, false)
	grace := time.NewTimer(p.grace)
	defer grace.Stop()
	select {
	case <-p.exited:
	case <-grace.C:
	case <-ctx.Done():
	}
	// Also after a clean exit of the leader: a child it left behind (go run's
	// binary, a master's workers) must not outlive the spec.
	signalGroup(p.cmd, true)
	<-p.exited
	// Returns as soon as the group is gone; the bound only covers a
	// machine too loaded to finish the kill at once.
	awaitGroupGone(p.cmd, 5*time.Second)
	p.drain()
	return nil
}

// drain waits, briefly, for the last output of a process that exited: the
// pipe is read by another goroutine, and the reason a proxy did not start
// is usually in its last line.
func (p *process) drain() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-p.drained:
	case <-t.C:
	}
}
