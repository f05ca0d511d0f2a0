package bench

import (
	"bufio"
	"bytes"
	"context"
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
	"time"
)

// startTimeout bounds how long a process may take to start listening.
const startTimeout = 15 * time.Second

// stopGrace is how long a process gets to exit after SIGTERM.
const stopGrace = 5 * time.Second

// process is a child process serving on one or more addresses.
type process struct {
	name   string
	cmd    *exec.Cmd
	addrs  []string
	stderr *tail
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's error, set before exited is closed
}

// startListening starts argv (setup may adjust the command first) and waits for it to write one "listening
// ADDR" line per address it serves (n of them) on stdout.
func startListening(ctx context.Context, name string, argv []string, n int, setup func(*exec.Cmd)) (*process, error) {
	p, stdout, err := start(name, argv, setup)
	if err != nil {
		return nil, err
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				select {
				case lines <- addr:
				case <-p.exited:
				}
			}
		}
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	for len(p.addrs) < n {
		select {
		case addr := <-lines:
			p.addrs = append(p.addrs, addr)
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before listening: %v\n%s", name, p.err, p.stderr)
		case <-timer.C:
			p.stop()
			return nil, fmt.Errorf("%s: not listening after %v\n%s", name, startTimeout, p.stderr)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		}
	}
	return p, nil
}

// startOnPort starts argv, which listens on addr, and waits until addr
// accepts connections.
func startOnPort(ctx context.Context, name string, argv []string, dir, addr string) (*process, error) {
	p, _, err := start(name, argv, func(c *exec.Cmd) { c.Dir = dir })
	if err != nil {
		return nil, err
	}
	p.addrs = []string{addr}
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before listening: %v\n%s", name, p.err, p.stderr)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
			// Polling: a foreign server announces nothing when ready.
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s: %s not accepting after %v\n%s", name, addr, startTimeout, p.stderr)
		}
	}
}

func start(name string, argv []string, setup func(*exec.Cmd)) (*process, *os.File, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	// Its own process group, so that stopping it reaches any workers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &process{name: name, cmd: cmd, stderr: &tail{max: 8 << 10}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if setup != nil {
		setup(cmd)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, nil, fmt.Errorf("starting %s (%s): %w", name, argv[0], err)
	}
	w.Close()
	go func() {
		p.err = cmd.Wait()
		r.Close()
		close(p.exited)
	}()
	return p, r, nil
}

// stop ends the process: SIGTERM to its group, SIGKILL after stopGrace.
func (p *process) stop() {
	if p == nil {
		return
	}
	pgid := -p.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopGrace):
		syscall.Kill(pgid, syscall.SIGKILL)
		<-p.exited
	}
}

// peakRSS is the sum of VmHWM (peak resident set) over the process and its
// descendants, in bytes; for nginx that is the master and its workers.
func (p *process) peakRSS() (int64, error) { return treeStatus(p.cmd.Process.Pid, "VmHWM") }

// rss is the sum of VmRSS over the process and its descendants, in bytes.
func (p *process) rss() (int64, error) { return treeStatus(p.cmd.Process.Pid, "VmRSS") }

// cpu is the user and system CPU time the process and its descendants have
// used so far (children that exited and were waited for included).
func (p *process) cpu() (time.Duration, error) {
	var total time.Duration
	for i, q := range append([]int{p.cmd.Process.Pid}, descendants(p.cmd.Process.Pid)...) {
		t, err := cpuTime(q)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		total += t
	}
	return total, nil
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

// cpuTime reads utime, stime, cutime and cstime from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	// After "pid (comm)": state is field 3; utime..cstime are 14..17.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

func treeStatus(pid int, field string) (int64, error) {
	var total int64
	for _, q := range append([]int{pid}, descendants(pid)...) {
		v, err := statusKB(q, field)
		if err != nil {
			if q == pid {
				return 0, err
			}
			continue // a worker that just exited
		}
		total += v << 10
	}
	return total, nil
}

// statusKB reads a "Field: N kB" line of /proc/PID/status.
func statusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field+":")); ok {
			f := strings.Fields(string(v))
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// descendants lists the processes below pid, found through each process's
// parent in /proc/*/stat.
func descendants(pid int) []int {
	parent := map[int]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, s := range stats {
		b, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		q, err1 := strconv.Atoi(filepath.Base(filepath.Dir(s)))
		pp, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil {
			parent[q] = pp
		}
	}
	var out []int
	in := map[int]bool{pid: true}
	for changed := true; changed; {
		changed = false
		for q, pp := range parent {
			if in[pp] && !in[q] {
				in[q] = true
				out = append(out, q)
				changed = true
			}
		}
	}
	return out
}

// tail keeps the last bytes written to it, for error messages.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// freeAddr returns a loopback address that was free a moment ago, for
// servers that cannot report the port they bound.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

var errSkipped = errors.New("skipped")
