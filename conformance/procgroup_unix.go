//go:build unix

package conformance

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// ownGroup starts cmd in a process group of its own, so that stopping it
// reaches every process it spawned.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends SIGTERM (or SIGKILL) to cmd's process group.
func signalGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	// The group id is the leader's pid; the group may be gone (ESRCH).
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

// awaitGroupGone waits, up to bound, until no process of cmd's group is
// left: a SIGKILL is delivered asynchronously, and a spec that follows must
// not meet the last one's processes. An orphan that init has not reaped yet
// still counts, hence the bound.
func awaitGroupGone(cmd *exec.Cmd, bound time.Duration) {
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		if err := syscall.Kill(-cmd.Process.Pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		select {
		case <-deadline.C:
			return
		case <-poll.C:
		}
	}
}
