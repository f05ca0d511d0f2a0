package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// testTimeout bounds each Docker-driven test: a cached image build and a
// start take about a second each here; a first build of the binary takes
// some tens of seconds.
const testTimeout = 3 * time.Minute

// newTestRun starts a run, or skips the test without Docker (fails instead
// with PROXYSPEC_REQUIRE_DOCKER=1).
func newTestRun(t *testing.T, ctx context.Context) *Run {
	t.Helper()
	r, err := NewRun(ctx, WithLog(testLog{t}))
	if errors.Is(err, ErrNoDocker) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// get sends one GET with a plain client that reuses nothing, and returns the
// status and the backend that answered.
func get(url string) (int, string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Proxyspec-Backend"), nil
}

// dial opens a TCP connection to addr and closes it, reporting only whether
// it could be opened.
func dial(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err == nil {
		c.Close()
	}
	return err
}

func mustServe(t *testing.T, b *Backend, when string) {
	t.Helper()
	status, from, err := get(b.URL() + "/" + when)
	if err != nil || status != 200 || from != b.Name() {
		t.Fatalf("%s: GET %s/%s = %d from %q, %v; want 200 from %s", when, b.URL(), when, status, from, err, b.Name())
	}
}

// leftovers lists what is labelled with run id, by kind.
func leftovers(t *testing.T, ctx context.Context, docker client.APIClient, id string) []string {
	t.Helper()
	f := make(client.Filters).Add("label", LabelRun+"="+id)
	var out []string
	cs, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Items {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	ns, err := docker.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.Items {
		out = append(out, "network "+n.Name)
	}
	is, err := docker.ImageList(ctx, client.ImageListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range is.Items {
		out = append(out, "image "+strings.Join(i.RepoTags, ","))
	}
	return out
}

func TestBackendsFailAndRecover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r := newTestRun(t, ctx)
	docker := r.docker

	a, err := r.Start(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Start(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, "a"); err == nil {
		t.Error("a second backend named a started")
	}
	if _, err := r.Start(ctx, "Not_A_Label"); err == nil {
		t.Error("a backend with a name that is no DNS label started")
	}
	if a.NetworkURL() != "http://a:8080" || b.NetworkURL() != "http://b:8080" {
		t.Errorf("network URLs %s %s", a.NetworkURL(), b.NetworkURL())
	}
	mustServe(t, a, "first")
	mustServe(t, b, "first")
	reqs, err := a.WaitRequests(ctx, 1)
	if err != nil || len(reqs) != 1 || reqs[0].Target != "/first" {
		t.Fatalf("a recorded %+v, %v; want GET /first", reqs, err)
	}

	// Stopped: refused at once.
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dial(a.Addr(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial a stopped backend at %s: %v, want connection refused", a.Addr(), err)
	}
	// The command stopped on SIGTERM by itself, well before Docker's SIGKILL.
	if st, err := a.ctr.State(ctx); err != nil || st.Running || st.ExitCode != 0 {
		t.Errorf("state of a stopped backend: %+v, %v; want exited 0", st, err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mustServe(t, a, "restarted")
	if reqs, _ := a.Requests(ctx); len(reqs) != 1 || reqs[0].Target != "/restarted" {
		t.Errorf("a restarted backend recorded %+v, want only GET /restarted", reqs)
	}

	// Paused: the connection is accepted, the request is not answered, until
	// the backend thaws and answers it.
	if err := b.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatalf("dial a paused backend: %v, want accepted", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /while-paused HTTP/1.1\r\nHost: b\r\n\r\n")
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var ne net.Error
	if _, err := br.ReadByte(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("read from a paused backend: %v, want a timeout", err)
	}
	if err := b.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Errorf("the request sent while paused, after Unpause: %v, %v; want 200", resp, err)
	}
	mustServe(t, b, "unpaused")

	// Disconnected: the mapped port is withdrawn (refused from the host);
	// at its network address the container is unreachable.
	ip, err := a.NetworkIP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inNet := net.JoinHostPort(ip.String(), strconv.Itoa(DataPort))
	// Whether this host routes to the run's network (Linux, engine local).
	direct := dial(inNet, 2*time.Second) == nil
	addr := a.Addr()
	if err := a.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dial(addr, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial a disconnected backend at %s: %v, want connection refused", addr, err)
	}
	if direct {
		// Nothing answers for the address any more: the SYN goes unanswered
		// (timeout) or, once the ARP entry has failed, the kernel says there
		// is no route. Either way, not refused: nobody is there to refuse.
		err := dial(inNet, 5*time.Second)
		if !errors.Is(err, syscall.EHOSTUNREACH) && !(errors.As(err, &ne) && ne.Timeout()) {
			t.Errorf("dial a disconnected backend at %s: %v, want a timeout or no route to host", inNet, err)
		}
	} else {
		t.Logf("this host does not route to %s: unreachability from inside the network not checked", inNet)
	}
	if err := a.Reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	mustServe(t, a, "reconnected")
	// Other containers find it by name again.
	aliases, err := a.ctr.NetworkAliases(ctx)
	if err != nil || !slices.Contains(aliases[r.Network()], "a") {
		t.Errorf("aliases of a reconnected backend: %v, %v; want a on %s", aliases, err, r.Network())
	}
	if reqs, _ := a.Requests(ctx); len(reqs) != 2 {
		t.Errorf("a reconnected backend recorded %d requests, want 2 (kept across the cut)", len(reqs))
	}

	// Close leaves nothing behind.
	id := r.ID()
	if got := leftovers(t, ctx, docker, id); len(got) != 4 {
		t.Errorf("before Close, labelled %v; want 2 containers, a network and an image", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := leftovers(t, ctx, docker, id); len(got) > 0 {
		t.Errorf("after Close, left behind: %v", got)
	}
	if _, err := r.Start(ctx, "late"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestNewRunSweepsCrashedRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	setEnvDefaults()
	docker, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Skip(err)
	}
	defer docker.Close()
	if _, err := docker.Ping(ctx, client.PingOptions{}); err != nil {
		if os.Getenv(RequireDockerEnv) == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}

	// A pid that certainly belonged to a process that is gone.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(cmd.Process.Pid)
	host, _ := os.Hostname()
	made := map[string]map[string]string{
		"crashed":   {LabelRun: "crashed" + dead, LabelPID: dead, LabelHost: host},
		"live":      {LabelRun: "live" + dead, LabelPID: strconv.Itoa(os.Getpid()), LabelHost: host},
		"elsewhere": {LabelRun: "elsewhere" + dead, LabelPID: dead, LabelHost: host + "-other"},
	}
	for name, labels := range made {
		nw := "proxyspec-test-" + name + "-" + dead
		if _, err := docker.NetworkCreate(ctx, nw, client.NetworkCreateOptions{Driver: "bridge", Labels: labels}); err != nil {
			t.Fatal(err)
		}
		defer docker.NetworkRemove(context.WithoutCancel(ctx), nw, client.NetworkRemoveOptions{})
	}

	newTestRun(t, ctx)

	if got := leftovers(t, ctx, docker, made["crashed"][LabelRun]); len(got) > 0 {
		t.Errorf("a crashed run's network survived the sweep: %v", got)
	}
	if got := leftovers(t, ctx, docker, made["live"][LabelRun]); len(got) != 1 {
		t.Errorf("a live run's network was swept: %v", got)
	}
	if got := leftovers(t, ctx, docker, made["elsewhere"][LabelRun]); len(got) != 1 {
		t.Errorf("another host's network was swept: %v", got)
	}
}

func TestNoDockerSkipsUnlessRequired(t *testing.T) {
	cause := errors.New("dial unix /var/run/docker.sock: connect: no such file or directory")
	t.Setenv(RequireDockerEnv, "")
	if err := noDocker(cause); !errors.Is(err, ErrNoDocker) || !errors.Is(err, cause) {
		t.Errorf("without %s: %v, want ErrNoDocker wrapping the cause", RequireDockerEnv, err)
	}
	t.Setenv(RequireDockerEnv, "1")
	if err := noDocker(cause); errors.Is(err, ErrNoDocker) || !errors.Is(err, cause) || !strings.Contains(err.Error(), RequireDockerEnv) {
		t.Errorf("with %s=1: %v, want the cause without ErrNoDocker", RequireDockerEnv, err)
	}
}
