package conformance_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
)

// A run interrupted by SIGINT or SIGTERM, at whatever point, ends promptly
// and leaves nothing behind: no process of a command subject (its
// grandchildren included, even one that ignores SIGTERM), no private
// directory, and with container backends no container, network or image.

// pidFileEnv names the file where each command subject started by an
// interrupt child appends its pid, which is also its process group id.
const pidFileEnv = "PROXYSPEC_TEST_PIDFILE"

// interruptGrace is the command subject's stop grace in these runs.
const interruptGrace = time.Second

// interruptBound bounds how long an interrupted run may take to exit: the
// running spec's cleanup (SIGTERM, then SIGKILL after the grace, then up to
// a second for the group to go), the report, with a wide margin for a
// loaded machine.
const interruptBound = 10 * (interruptGrace + time.Second)

func init() {
	children["interrupt-command"] = func() conformance.Config {
		exe, _ := os.Executable()
		return conformance.Config{
			Subject: conformance.Command(conformance.CommandConfig{
				Name: "interruptible",
				// The subject spawns a grandchild that ignores SIGTERM; only
				// the SIGKILL to the whole group ends it.
				Args:           []string{"sh", "-c", `echo $$ >> "$` + pidFileEnv + `"; exec "$0" "$1" spawn`, exe, "{{.ConfigFile}}"},
				ConfigTemplate: "listen {{.Listen}}\n",
				Env:            []string{helperEnv + "=proxy"},
				StopGrace:      interruptGrace,
			}),
		}
	}
}

func TestInterruptCommandRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		// after is how many subjects have started when the signal goes:
		// 1 catches the first while it starts, 3 a later one mid-spec.
		after int
	}{
		{"SIGINT while the first subject starts", syscall.SIGINT, 1},
		{"SIGTERM while the first subject starts", syscall.SIGTERM, 1},
		{"SIGINT in the third spec", syscall.SIGINT, 3},
		{"SIGTERM in the third spec", syscall.SIGTERM, 3},
	} {
		t.Run(tc.name, func(t *testing.T) { testInterruptCommand(t, tc.sig, tc.after) })
	}
}

func testInterruptCommand(t *testing.T, sig syscall.Signal, after int) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "interrupt-command", pidFileEnv+"="+pidFile, "TMPDIR="+tmp)

	// Wait for the after-th subject to start, or the run to end first.
	var pids []int
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(pids) < after {
		select {
		case <-c.done:
			t.Fatalf("the run ended (%v) before %d subjects started (%v)\n%s", c.err, after, pids, c.out.String())
		case <-tick.C:
			pids = readPids(t, pidFile)
		}
	}
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	code := c.exit(t, interruptBound)
	t.Logf("exited %d after %v", code, time.Since(began).Round(time.Millisecond))
	if code == 0 {
		t.Errorf("an interrupted run exited 0, as if it had passed\n%s", c.out.String())
	}
	// Every subject the run started, whatever it was doing, is gone with
	// its whole process group.
	for _, pgid := range readPids(t, pidFile) {
		if alive := groupMembers(pgid); len(alive) > 0 {
			t.Errorf("process group %d of a subject is still alive after the run: %v", pgid, alive)
			syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "proxyspec-*")); len(left) > 0 {
		t.Errorf("private directories left behind: %v", left)
	}
}

func readPids(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// groupMembers lists the live processes (zombies excluded: they hold no
// resources and wait for init to reap them) of process group pgid, from
// /proc.
func groupMembers(pgid int) []string {
	ents, _ := os.ReadDir("/proc")
	var alive []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		s := string(b)
		rest := s[strings.LastIndexByte(s, ')')+2:]
		f := strings.Fields(rest)
		if len(f) < 3 || f[0] == "Z" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		alive = append(alive, e.Name()+" "+s[:strings.LastIndexByte(s, ')')+1])
	}
	return alive
}

// TestContainerInterruptedEarly sends SIGTERM to a run with container
// backends as soon as the engine holds anything of it (its network or its
// image, before any backend container runs): the run ends and removes what
// it made.
func TestContainerInterruptedEarly(t *testing.T) {
	dc := docker(t)
	c := startChild(t, "reference")
	pid := c.cmd.Process.Pid
	// Network events carry no labels to filter on: look for the resources.
	deadline := time.Now().Add(childTimeout)
	for len(leftovers(t, dc, pid)) == 0 {
		if time.Now().After(deadline) {
			c.cmd.Process.Kill()
			c.exit(t, childTimeout)
			t.Fatalf("the run made nothing on the engine within %v\n%s", childTimeout, c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("signalled with %v on the engine", leftovers(t, dc, pid))
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.exit(t, childTimeout); code == conformance.ExitPassed {
		t.Errorf("an interrupted run exited %d, want a failure\n%s", code, c.out.String())
	}
	expectNothingLeft(t, dc, pid)
}
