package conformance_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/conformance"
)

// Ginkgo's RunSpecs runs once per process, so a test that needs a whole run
// re-executes the test binary, which runs TestChild with one of the
// configurations in children, by name.

// childEnv names the configuration a re-executed test binary runs.
const childEnv = "PROXYSPEC_TEST_CHILD"

// childTimeout bounds a child run that has no tighter bound of its own: a
// first build of the proxyspec binary plus the whole suite.
const childTimeout = 4 * time.Minute

func TestChild(t *testing.T) {
	name := os.Getenv(childEnv)
	if name == "" {
		t.Skip("runs only as a child process of a framework test")
	}
	cfg := children[name]()
	cfg.ReportJSON = os.Getenv("PROXYSPEC_TEST_REPORT")
	cfg.Output = os.Stdout
	if strings.HasPrefix(name, registeredPrefix) {
		// The specs embedded in a Ginkgo suite of the caller's own, which
		// has no Close to call: go test's status is the child's.
		conformance.Register(&cfg)
		gomega.RegisterFailHandler(ginkgo.Fail)
		ginkgo.RunSpecs(t, "registered")
		return
	}
	rep, err := conformance.Run(cfg, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(conformance.ExitSetup)
	}
	os.Exit(rep.ExitCode())
}

// registeredPrefix marks the children that run their configuration through
// Register in a suite of their own, as an implementer embedding the specs
// does, instead of through Run.
const registeredPrefix = "registered-"

// child is a child process running one configuration.
type child struct {
	name   string
	cmd    *exec.Cmd
	out    bytes.Buffer
	report string
	began  time.Time
	done   chan struct{} // closed when the child is waited for
	err    error         // of Wait
}

// startChild starts the named configuration in a child process, with env
// added to this process's environment.
func startChild(t *testing.T, name string, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{name: name, report: filepath.Join(t.TempDir(), "report.json")}
	c.cmd = exec.Command(exe, "-test.run=^TestChild$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), childEnv+"="+name, "PROXYSPEC_TEST_REPORT="+c.report)
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	c.began = time.Now()
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.done = make(chan struct{})
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c
}

// exit waits for the child and returns its exit status; a child still
// running after bound is killed and fails the test.
func (c *child) exit(t *testing.T, bound time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(bound):
		c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("child %s ran longer than %v\n%s", c.name, bound, c.out.String())
	}
	if ee, ok := errors.AsType[*exec.ExitError](c.err); ok {
		return ee.ExitCode()
	} else if c.err != nil {
		t.Fatalf("child %s: %v", c.name, c.err)
	}
	return 0
}

// wait waits for the child as exit does and returns its exit status and
// report.
func (c *child) wait(t *testing.T, bound time.Duration) (int, conformance.Report) {
	t.Helper()
	code := c.exit(t, bound)
	rep, err := conformance.ReadReport(c.report)
	if err != nil {
		t.Fatalf("child %s (exit %d) left no report: %v\n%s", c.name, code, err, c.out.String())
	}
	return code, rep
}

// runChild runs the named configuration in a child process and returns its
// exit status, its output and its report.
func runChild(t *testing.T, name string) (int, string, conformance.Report) {
	t.Helper()
	c := startChild(t, name)
	code, rep := c.wait(t, childTimeout)
	return code, c.out.String(), rep
}
