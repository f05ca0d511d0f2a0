package main

import (
	"bytes"

	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

// data mirrors what the kit's command subject hands ci/peers/NAME/config.tmpl
// and ci/peers/NAME/cmd; the field names are the contract.
type data struct {
	Listen           string
	ListenHost       string
	ListenPort       int
	Backends         []endpoint
	PathPrefix       string
	ConnectTimeoutMS int64
	ReadTimeoutMS    int64
	Dir              string
	ConfigFile       string
}

type endpoint struct {
	Name string
	URL  string
	Host string
	Port int
}

// peer is one ci/peers/NAME directory.
type peer struct {
	name    string
	config  *template.Template
	cmdline *template.Template
	lacks   string
}

func loadPeer(dir string) (*peer, error) {
	name := filepath.Base(dir)
	read := func(f string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", fmt.Errorf("peer %s: %w", name, err)
		}
		return string(b), nil
	}
	cfg, err := read("config.tmpl")
	if err != nil {
		return nil, err
	}
	cmd, err := read("cmd")
	if err != nil {
		return nil, err
	}
	lacks, err := read("lacks")
	if err != nil {
		return nil, err
	}
	// missingkey=error: a misspelt field must fail the render, not become
	// "<no value>" in a config file.
	ct, err := template.New("config.tmpl").Option("missingkey=error").Parse(cfg)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", name, err)
	}
	lt, err := template.New("cmd").Option("missingkey=error").Parse(strings.TrimSpace(cmd))
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", name, err)
	}
	return &peer{name: name, config: ct, cmdline: lt, lacks: strings.TrimSpace(lacks)}, nil
}

// topology is what one check asks of a peer.
type topology struct {
	backends         []string // host:port
	prefix           string
	connect, readTMO time.Duration
}

// render writes the config into a fresh private dir and returns the data and
// the argument vector.
func (p *peer) render(t topology) (data, []string, error) {
	dir, err := os.MkdirTemp("", "peer-"+p.name+"-")
	if err != nil {
		return data{}, nil, err
	}
	// Left 0700 as the kit's command subject leaves it: templates whose
	// workers drop privileges must not need to write here.
	port, err := freePort()
	if err != nil {
		return data{}, nil, err
	}
	d := data{
		Listen:           net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		ListenHost:       "127.0.0.1",
		ListenPort:       port,
		PathPrefix:       t.prefix,
		ConnectTimeoutMS: t.connect.Milliseconds(),
		ReadTimeoutMS:    t.readTMO.Milliseconds(),
		Dir:              dir,
		ConfigFile:       filepath.Join(dir, "proxy.conf"),
	}
	for i, b := range t.backends {
		host, ps, _ := net.SplitHostPort(b)
		port, _ := strconv.Atoi(ps)
		d.Backends = append(d.Backends, endpoint{
			Name: fmt.Sprintf("b%d", i), URL: "http://" + b, Host: host, Port: port,
		})
	}
	var cfg, line bytes.Buffer
	if err := p.config.Execute(&cfg, d); err != nil {
		return d, nil, fmt.Errorf("render %s config: %w", p.name, err)
	}
	if err := os.WriteFile(d.ConfigFile, cfg.Bytes(), 0o644); err != nil {
		return d, nil, err
	}
	if err := p.cmdline.Execute(&line, d); err != nil {
		return d, nil, fmt.Errorf("render %s cmd: %w", p.name, err)
	}
	args, err := splitArgs(line.String())
	if err != nil {
		return d, nil, fmt.Errorf("%s cmd %q: %w", p.name, line.String(), err)
	}
	return d, args, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// instance is one running peer.
type instance struct {
	data    data
	cmd     *exec.Cmd
	out     *syncBuffer
	exited  chan struct{}
	startup time.Duration
}

func (p *peer) start(t topology) (*instance, error) {
	d, args, err := p.render(t)
	if err != nil {
		return nil, err
	}
	out := &syncBuffer{}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = d.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(d.Dir)
		return nil, fmt.Errorf("start %s: %w", p.name, err)
	}
	in := &instance{data: d, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(in.exited) }()
	running.set(in)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.Listen, 100*time.Millisecond)
		if err == nil {
			c.Close()
			in.startup = time.Since(began)
			return in, nil
		}
		select {
		case <-in.exited:
			_, _ = in.stop()
			return nil, fmt.Errorf("%s exited before accepting (%v):\n%s", p.name, cmd.ProcessState, out.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_, _ = in.stop()
			return nil, fmt.Errorf("%s did not accept on %s within 10s:\n%s", p.name, d.Listen, out.String())
		}
	}
}

// stop sends SIGTERM to the process group and SIGKILL after a grace period;
// it reports how long the peer took to go and whether SIGKILL was needed.
func (in *instance) stop() (time.Duration, error) {
	began := time.Now()
	pg := -in.cmd.Process.Pid
	_ = syscall.Kill(pg, syscall.SIGTERM)
	var err error
	select {
	case <-in.exited:
	case <-time.After(5 * time.Second):
		err = errors.New("did not stop on SIGTERM within 5s: killed")
	}
	// Children that outlive the leader (varnishd's child, workers) go too.
	_ = syscall.Kill(pg, syscall.SIGKILL)
	<-in.exited
	took := time.Since(began)
	os.RemoveAll(in.data.Dir)
	running.set(nil)
	return took, err
}

// running is the one peer started at a time, so that an interrupt or a
// closed stdout still stops it instead of leaving a daemon behind.
var running current

type current struct {
	mu sync.Mutex
	in *instance
}

func (c *current) set(in *instance) {
	c.mu.Lock()
	c.in = in
	c.mu.Unlock()
}

func (c *current) stop() {
	c.mu.Lock()
	in := c.in
	c.mu.Unlock()
	if in != nil {
		_, _ = in.stop()
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// splitArgs splits a command line the way a POSIX shell would for words,
// single and double quotes and backslash escapes; nothing else (no
// variables, globs or redirections).
func splitArgs(s string) ([]string, error) {
	var (
		args    []string
		cur     strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, errors.New("unterminated quote or escape")
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	return args, nil
}
