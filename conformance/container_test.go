package conformance_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/fakebackend/container"
	"github.com/proxyspec/proxyspec/internal/reference"
)

// These tests run the suite with container backends in child processes
// (RunSpecs runs once per process), then look on the engine for what the
// child left, by the labels every resource of a run carries.

// selfSpecs are the specs the container subject runs: plain forwarding,
// failover over a refusal and over a connect timeout, hop-by-hop fields
// both ways.
const selfSpecs = `^(forward/get-basic|failover/refused|failover/connect-timeout|hop-by-hop/request/connection|hop-by-hop/response/connection-listed)$`

// modeSpecs set a backend to Blackhole or Refuse, but forward/get-basic.
const modeSpecs = `^(timeouts/connect|failover/connect-timeout|failover/refused|forward/get-basic)$`

// publishedPortsReason is why a spec is not supported with backends behind
// published ports.
const publishedPortsReason = "behind a port Docker publishes"

func init() {
	children["reference"] = func() conformance.Config {
		return conformance.Config{Subject: reference.Subject(nil), Backends: conformance.BackendsContainers}
	}
	children["self"] = func() conformance.Config {
		return conformance.Config{Subject: conformance.Container(conformance.SelfImage), Backends: conformance.BackendsContainers, Focus: selfSpecs}
	}
	children["mapped"] = func() conformance.Config {
		return conformance.Config{Subject: reference.Subject(nil), Backends: conformance.BackendsContainers, Focus: modeSpecs}
	}
	children["exits"] = func() conformance.Config {
		return conformance.Config{
			Subject:  conformance.Container(conformance.SelfImage, conformance.ContainerCmd("proxy", "--no-such-flag={{.ListenPort}}")),
			Backends: conformance.BackendsContainers, Focus: "^forward/get-basic$",
		}
	}
	children[registeredPrefix+"containers"] = func() conformance.Config {
		return conformance.Config{Subject: reference.Subject(nil), Backends: conformance.BackendsContainers, Focus: "^forward/get-basic$"}
	}
	children["inprocess-backends"] = func() conformance.Config {
		return conformance.Config{Subject: conformance.Container(conformance.SelfImage), Focus: "^forward/get-basic$"}
	}
}

// docker returns a client of the engine, or skips the test when there is
// none (fails instead with PROXYSPEC_REQUIRE_DOCKER=1).
func docker(t *testing.T) client.APIClient {
	t.Helper()
	dc, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = dc.Ping(ctx, client.PingOptions{})
		cancel()
		if err != nil {
			dc.Close()
		}
	}
	if err != nil {
		if os.Getenv(container.RequireDockerEnv) == "1" {
			t.Fatalf("Docker is required (%s=1): %v", container.RequireDockerEnv, err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	t.Cleanup(func() { dc.Close() })
	return dc
}

// ownedBy is the label filter for what the process pid of this host made.
func ownedBy(pid int) client.Filters {
	host, _ := os.Hostname()
	return make(client.Filters).Add("label", container.LabelPID+"="+strconv.Itoa(pid)).Add("label", container.LabelHost+"="+host)
}

// leftovers lists the containers, networks and images process pid made and
// did not remove.
func leftovers(t *testing.T, dc client.APIClient, pid int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := ownedBy(pid)
	var out []string
	cs, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs.Items {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	ns, err := dc.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns.Items {
		out = append(out, "network "+n.Name)
	}
	is, err := dc.ImageList(ctx, client.ImageListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range is.Items {
		out = append(out, "image "+strings.Join(i.RepoTags, ","))
	}
	return out
}

// created counts the containers process pid created between since and
// now, by role: backends by name, and the rest by role label.
func created(t *testing.T, dc client.APIClient, pid int, since time.Time) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := ownedBy(pid).Add("type", "container").Add("event", "create")
	res := dc.Events(ctx, client.EventsListOptions{
		Since:   strconv.FormatInt(since.Add(-time.Second).Unix(), 10),
		Until:   strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		Filters: f,
	})
	n := map[string]int{}
	for {
		select {
		case m := <-res.Messages:
			// Image builds make containers of their own, unlabelled.
			if b := m.Actor.Attributes[container.LabelBackend]; b != "" {
				n["backend "+b]++
			} else if r := m.Actor.Attributes[container.LabelRole]; r != "" {
				n[r]++
			}
		case err := <-res.Err:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reading the engine's events: %v", err)
			}
			return n
		}
	}
}

func expectNothingLeft(t *testing.T, dc client.APIClient, pid int) {
	t.Helper()
	if got := leftovers(t, dc, pid); len(got) > 0 {
		t.Errorf("the run left behind %v", got)
	}
}

// TestContainerBackendsReference runs the whole seed suite against the
// reference with its backends in containers: every spec passes, as with
// backends in process, from a handful of pooled containers.
func TestContainerBackendsReference(t *testing.T) {
	dc := docker(t)
	c := startChild(t, "reference")
	code, rep := c.wait(t, childTimeout)
	took := time.Since(c.began)
	t.Logf("the seed suite with container backends took %v (%d specs)", took.Round(100*time.Millisecond), len(rep.Specs))
	// Where this host does not route to the container network, specs that
	// need a refusal or a blackhole are not supported (see
	// TestContainerBackendsMapped); everything else passes.
	for _, r := range rep.Specs {
		if r.State != conformance.StatePassed && (r.State != conformance.StateNotSupported || !strings.Contains(r.Failure, publishedPortsReason)) {
			t.Errorf("%s: %s: %s", r.ID, r.State, r.Failure)
		}
	}
	if code != conformance.ExitPassed || len(rep.Specs) < 100 {
		t.Errorf("exit %d, totals %+v for %d specs; want every spec passed\n%s", code, rep.Totals, len(rep.Specs), c.out.String())
	}
	if rep.Backends != conformance.BackendsContainers {
		t.Errorf("report says backends %q", rep.Backends)
	}
	// Pooled: one container per backend name the specs use ("a".."c" or
	// so), not one per spec.
	made := created(t, dc, c.cmd.Process.Pid, c.began)
	total := 0
	for what, n := range made {
		total += n
		if n != 1 {
			t.Errorf("%d containers created for %s, want 1", n, what)
		}
	}
	if total == 0 || total > 8 {
		t.Errorf("containers created: %v; want one per backend name", made)
	}
	expectNothingLeft(t, dc, c.cmd.Process.Pid)
}

// TestContainerBackendsRegistered embeds the specs with Register, whose
// caller has nothing to close: the containers must still be gone when the
// suite ends, not left for the next run's sweep.
func TestContainerBackendsRegistered(t *testing.T) {
	dc := docker(t)
	c := startChild(t, registeredPrefix+"containers")
	code, rep := c.wait(t, childTimeout)
	if st := states(rep); code != 0 || st["forward/get-basic"] != conformance.StatePassed {
		t.Errorf("exit %d, forward/get-basic %q; want 0 and passed\n%s", code, st["forward/get-basic"], c.out.String())
	}
	if len(created(t, dc, c.cmd.Process.Pid, c.began)) == 0 {
		t.Fatalf("the child created no container: nothing was tested\n%s", c.out.String())
	}
	expectNothingLeft(t, dc, c.cmd.Process.Pid)
}

// TestContainerSubjectSelf runs the kit's image as the proxy under test, on
// the backends' network: it reaches them by name, and a refused or
// blackholed backend inside the network is what it is in process.
func TestContainerSubjectSelf(t *testing.T) {
	dc := docker(t)
	c := startChild(t, "self")
	code, rep := c.wait(t, childTimeout)
	t.Logf("%d specs with the container subject took %v", len(rep.Specs), time.Since(c.began).Round(100*time.Millisecond))
	if code != conformance.ExitPassed || len(rep.Specs) != 5 || rep.Totals.Passed != 5 {
		t.Errorf("exit %d, totals %+v for %d specs; want 5 passed\n%s", code, rep.Totals, len(rep.Specs), c.out.String())
	}
	if rep.Subject != "reference-container" {
		t.Errorf("subject %q in the report, want reference-container", rep.Subject)
	}
	// One proxy container per spec, each removed after it.
	if made := created(t, dc, c.cmd.Process.Pid, c.began); made["subject"] != 5 {
		t.Errorf("containers created: %v; want 5 subjects", made)
	}
	expectNothingLeft(t, dc, c.cmd.Process.Pid)
}

// TestContainerBackendsMapped forces published ports: neither a refusal nor
// a blackhole can be shown through them, so the specs that need one are not
// supported; the others still pass.
func TestContainerBackendsMapped(t *testing.T) {
	dc := docker(t)
	c := startChild(t, "mapped", "PROXYSPEC_CONTAINER_URLS=mapped")
	code, rep := c.wait(t, childTimeout)
	st := states(rep)
	want := map[string]conformance.State{
		"timeouts/connect":         conformance.StateNotSupported,
		"failover/connect-timeout": conformance.StateNotSupported,
		"failover/refused":         conformance.StateNotSupported,
		"forward/get-basic":        conformance.StatePassed,
	}
	for id, w := range want {
		if st[id] != w {
			t.Errorf("%s is %q, want %q", id, st[id], w)
		}
	}
	if code != conformance.ExitPassed || len(rep.Specs) != len(want) {
		t.Errorf("exit %d for %d specs\n%s", code, len(rep.Specs), c.out.String())
	}
	for _, r := range rep.Specs {
		if r.State == conformance.StateNotSupported && !strings.Contains(r.Failure, publishedPortsReason) {
			t.Errorf("%s: not supported for %q, want the reason", r.ID, r.Failure)
		}
	}
	expectNothingLeft(t, dc, c.cmd.Process.Pid)
}

// TestContainerSubjectSetupFailures: a container that exits at once, and
// container backends not asked for, are setup failures that say why in the
// report, and leave nothing behind. (TestContainerPool checks a missing
// image.)
func TestContainerSubjectSetupFailures(t *testing.T) {
	dc := docker(t)
	for name, want := range map[string]string{
		"exits":              "flag provided but not defined: -no-such-flag",
		"inprocess-backends": "needs container backends",
	} {
		t.Run(name, func(t *testing.T) {
			c := startChild(t, name)
			code, rep := c.wait(t, childTimeout)
			if code != conformance.ExitSetup || len(rep.Specs) != 1 || rep.Specs[0].State != conformance.StateSetupFailed {
				t.Fatalf("exit %d, specs %+v; want one setup failure\n%s", code, rep.Specs, c.out.String())
			}
			if r := rep.Specs[0]; !strings.Contains(r.Failure+r.SubjectOutput, want) {
				t.Errorf("setup failure %q, output %q; want it to say %q", r.Failure, r.SubjectOutput, want)
			}
			expectNothingLeft(t, dc, c.cmd.Process.Pid)
		})
	}
}

// TestContainerInterrupted sends SIGINT to a run once its first backend
// container has started: the run ends, and removes its containers, network
// and image.
func TestContainerInterrupted(t *testing.T) {
	dc := docker(t)
	c := startChild(t, "reference")
	pid := c.cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	defer cancel()
	res := dc.Events(ctx, client.EventsListOptions{
		Since:   strconv.FormatInt(c.began.Add(-time.Second).Unix(), 10),
		Filters: ownedBy(pid).Add("type", "container").Add("event", "start"),
	})
	select {
	case <-res.Messages:
	case err := <-res.Err:
		c.cmd.Process.Kill()
		c.exit(t, childTimeout)
		t.Fatalf("no container of the run started: %v\n%s", err, c.out.String())
	case <-c.done:
		t.Fatalf("the run ended before any container started\n%s", c.out.String())
	}
	cancel()
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := c.exit(t, childTimeout); code == conformance.ExitPassed {
		t.Errorf("an interrupted run exited %d, want a failure\n%s", code, c.out.String())
	}
	expectNothingLeft(t, dc, pid)
}
