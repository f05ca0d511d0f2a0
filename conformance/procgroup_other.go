//go:build !unix

package conformance

import (
	"os/exec"
	"time"
)

// ownGroup has no process groups to use here: only the process itself is
// stopped.
func ownGroup(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }

func awaitGroupGone(*exec.Cmd, time.Duration) {}
