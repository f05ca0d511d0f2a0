package conformance

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
	"github.com/proxyspec/proxyspec/fakebackend/container"
)

// TestContainerPool checks, on one run, what the suite's verdicts rest on
// with container backends: a pooled backend comes back clean, one a spec
// broke comes back new, a subject on this host gets a URL that reaches the
// backend, and the readiness probe of a container subject tells a
// listening port from a published one with nothing behind it.
func TestContainerPool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bp, err := newContainerPool(&Config{Subject: Handler("host", nil)})
	if errors.Is(err, container.ErrNoDocker) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	p := bp.(*containerPool)
	defer p.close()

	lend := func(when string) *pooledBackend {
		t.Helper()
		b, err := p.start(ctx, "a")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		pb := b.(*pooledBackend)
		if got := get(t, p.url(pb)+"/"+when); got != "a" {
			t.Fatalf("%s: GET through %s answered by %q, want a", when, p.url(pb), got)
		}
		return pb
	}

	first := lend("first")
	id := first.ContainerID()
	// Queued and never used: handed out with it, the next spec would hang.
	if err := first.Enqueue(ctx, fakebackend.Behaviour{Fault: fakebackend.Hang}); err != nil {
		t.Fatal(err)
	}
	first.Close()
	again := lend("again")
	if again.ContainerID() != id {
		t.Errorf("an intact backend was replaced (%s, then %s)", id, again.ContainerID())
	}
	if reqs, err := again.Requests(ctx); err != nil || len(reqs) != 1 || reqs[0].Target != "/again" {
		t.Errorf("a pooled backend recorded %+v, %v; want only GET /again (reset, queue emptied)", reqs, err)
	}

	ip, err := again.NetworkIP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	switch u := p.url(again); p.reach {
	case reachDirect:
		if !strings.Contains(u, ip.String()) {
			t.Errorf("this host routes to the network, but the subject's URL is %s, not at %s", u, ip)
		}
	case reachMapped:
		if u != again.URL() {
			t.Errorf("the subject's URL is %s, want the published %s", u, again.URL())
		}
	default:
		t.Errorf("reach %q", p.reach)
	}
	t.Logf("a subject on this host reaches backends %s: %s", p.reach, p.url(again))
	again.Close()

	for _, brk := range []struct {
		name string
		do   func(*pooledBackend) error
	}{
		{"paused", func(b *pooledBackend) error { return b.Pause(ctx) }},
		{"stopped", func(b *pooledBackend) error { return b.Stop(ctx) }},
		{"disconnected", func(b *pooledBackend) error { return b.Disconnect(ctx) }},
	} {
		b := lend("before-" + brk.name)
		old := b.ContainerID()
		if err := brk.do(b); err != nil {
			t.Fatal(err)
		}
		b.Close()
		nb := lend("after-" + brk.name)
		if nb.ContainerID() == old {
			t.Errorf("a %s backend was handed out again", brk.name)
		}
		nb.Close()
	}

	// A container subject reached through its published port sees the kit's
	// client come from the address ClientIP says.
	subject := Container(SelfImage).(*containerSubject)
	subject.attach(p.run)
	p.inNetwork = true // as for a pool made for this subject
	pb, err := p.start(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	ep, err := endpoint("a", p.url(pb))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := subject.Start(ctx, Topology{Backends: []Endpoint{ep}, ConnectTimeout: time.Second, ReadTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, "http://"+inst.Addr()+"/through-subject"); got != "a" {
		t.Errorf("through the container subject at %s: answered by %q, want a", inst.Addr(), got)
	}
	reqs, err := pb.Requests(ctx)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("backend a recorded %+v, %v; want the request through the subject", reqs, err)
	}
	xff := reqs[0].Values("X-Forwarded-For")
	if ci := inst.(*containerInstance).ClientIP(); ci == "" || len(xff) != 1 || xff[0] != ci {
		t.Errorf("X-Forwarded-For %q, ClientIP %q; want the one the other", xff, ci)
	}
	if err := inst.Stop(ctx); err != nil {
		t.Error(err)
	}
	if !strings.Contains(inst.Output(), "listening") {
		t.Errorf("the stopped subject's output is %q, want what it printed", inst.Output())
	}
	pb.Close()
	p.inNetwork = false

	// A container subject that exits at once, or whose image the engine
	// lacks, is a setup failure that says why.
	topo := Topology{ConnectTimeout: time.Second, ReadTimeout: time.Second}
	for _, c := range []struct {
		subject *containerSubject
		want    string
	}{
		{Container(SelfImage, ContainerCmd("proxy", "--no-such-flag={{.ListenPort}}")).(*containerSubject), "flag provided but not defined: -no-such-flag"},
		{Container("proxyspec-test-absent:never").(*containerSubject), "the kit never pulls"},
	} {
		c.subject.attach(p.run)
		inst, err := c.subject.Start(ctx, topo)
		if err == nil {
			inst.Stop(ctx)
			t.Errorf("%s started", c.subject.Name())
			continue
		}
		if se, ok := errors.AsType[*StartError](err); !ok || !strings.Contains(se.Error()+se.Output, c.want) {
			t.Errorf("%s: %v, output %q; want a StartError saying %q", c.subject.Name(), err, outputOf(err), c.want)
		}
	}

	// In the kit image a fake backend listens on 8080; nothing on 9.
	for _, c := range []struct {
		name string
		port int
		want bool
	}{{"probe-listening", container.DataPort, true}, {"probe-empty", 9, false}} {
		proc := launchFakebackend(t, ctx, p.run, c.name, c.port)
		mapped := prober{mapped: proc.Addr()}
		if got := mapped.accepting(ctx); got != c.want {
			t.Errorf("through the published port %s of %s: accepting %v, want %v", proc.Addr(), c.name, got, c.want)
		}
		if p.reach != reachDirect {
			continue
		}
		ip, err := proc.NetworkIP(ctx)
		if err != nil {
			t.Fatal(err)
		}
		direct := prober{direct: net.JoinHostPort(ip.String(), strconv.Itoa(c.port))}
		if got := direct.accepting(ctx); got != c.want || direct.indirect {
			t.Errorf("at %s: accepting %v (found unreachable: %v), want %v", direct.direct, got, direct.indirect, c.want)
		}
	}
}

// launchFakebackend runs a fake backend in the kit image, publishing port,
// and returns once it says it listens.
func launchFakebackend(t *testing.T, ctx context.Context, r *container.Run, name string, port int) *container.Proc {
	t.Helper()
	proc, err := r.Launch(ctx, container.Spec{
		Name: name, Role: "test", Port: port,
		Cmd: []string{"fakebackend", "--name", name, "--listen", "0.0.0.0:8080", "--control", "0.0.0.0:8081"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Close() })
	// Its one line of output is the only sign from inside: poll for it.
	for !strings.Contains(proc.Logs(), "listening data=") {
		select {
		case <-ctx.Done():
			t.Fatalf("%s never said it listens:\n%s", name, proc.Logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return proc
}

// get sends a GET that reuses nothing and returns X-Proxyspec-Backend.
func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Proxyspec-Backend")
}

// TestContainerSubjectSpec checks what a Container subject asks the engine
// for: the contract's environment with in-network backends, the command and
// the config file rendered for the topology.
func TestContainerSubjectSpec(t *testing.T) {
	s := Container("haproxy:2.6",
		ContainerPort(8404),
		ContainerCmd("haproxy", "-f", "{{.ConfigFile}}", "-db"),
		ContainerConfig("/etc/haproxy/proxyspec.cfg", "bind {{.Listen}}\n{{range .Backends}}server {{.Name}} {{.Host}}:{{.Port}}\n{{end}}timeout connect {{.ConnectTimeoutMS}}ms\n"),
		ContainerEnv("PROXYSPEC_PATH_PREFIX=/overridden"),
		ContainerLacks(FeatureVia),
	).(*containerSubject)
	a, _ := endpoint("a", "http://a:8080")
	b, _ := endpoint("b", "http://b:8080")
	topo := Topology{Backends: []Endpoint{a, b}, PathPrefix: "/api", ConnectTimeout: 200 * time.Millisecond, ReadTimeout: time.Second}

	spec, err := s.spec(nil, topo)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Image != "haproxy:2.6" || spec.Port != 8404 || spec.Role != "subject" || !strings.HasPrefix(spec.Name, "subject-") {
		t.Errorf("spec %+v", spec)
	}
	if got := strings.Join(spec.Cmd, " "); got != "haproxy -f /etc/haproxy/proxyspec.cfg -db" {
		t.Errorf("command %q", got)
	}
	env := strings.Join(spec.Env, "\n")
	for _, want := range []string{
		"PROXYSPEC_LISTEN=0.0.0.0:8404", "PROXYSPEC_BACKENDS=http://a:8080,http://b:8080",
		"PROXYSPEC_CONNECT_TIMEOUT_MS=200", "PROXYSPEC_READ_TIMEOUT_MS=1000",
	} {
		if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
			t.Errorf("environment lacks %s:\n%s", want, env)
		}
	}
	// The user's variables come last, so they win.
	if last := spec.Env[len(spec.Env)-1]; last != "PROXYSPEC_PATH_PREFIX=/overridden" {
		t.Errorf("last variable %q, want the user's", last)
	}
	wantCfg := "bind 0.0.0.0:8404\nserver a a:8080\nserver b b:8080\ntimeout connect 200ms\n"
	if len(spec.Files) != 1 || spec.Files[0].Path != "/etc/haproxy/proxyspec.cfg" || string(spec.Files[0].Data) != wantCfg {
		t.Errorf("files %+v, want the config rendered:\n%s", spec.Files, wantCfg)
	}
	if next, _ := s.spec(nil, topo); next.Name == spec.Name {
		t.Errorf("two starts share the container name %s", next.Name)
	}
	if s.Name() != "haproxy:2.6" || len(s.Lacks()) != 1 || s.Lacks()[0] != FeatureVia {
		t.Errorf("name %q, lacks %v", s.Name(), s.Lacks())
	}

	bad := Container("x", ContainerConfig("relative.cfg", "")).(*containerSubject)
	if _, err := bad.spec(nil, topo); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative config path: %v, want an error", err)
	}
	missing := Container("x", ContainerCmd("{{.Nope}}")).(*containerSubject)
	if _, err := missing.spec(nil, topo); err == nil {
		t.Error("a command template naming a missing key rendered")
	}
	// Without container backends there is no network to join.
	if _, err := Container(SelfImage).Start(context.Background(), topo); !errors.Is(err, errNeedsContainerBackends) {
		t.Errorf("start without a run: %v, want errNeedsContainerBackends", err)
	}
}
