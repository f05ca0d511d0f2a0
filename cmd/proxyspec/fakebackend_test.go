package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// fakebackendProc is `proxyspec fakebackend` run in this process.
type fakebackendProc struct {
	data, control, name string
	stop                context.CancelFunc
	done                chan int
	stderr              *bytes.Buffer // read only after done
}

// startFakebackend runs the command through dispatch, as main would, and
// returns once it printed its ready line.
func startFakebackend(t *testing.T, args ...string) *fakebackendProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &fakebackendProc{stop: cancel, done: make(chan int, 1), stderr: new(bytes.Buffer)}
	go func() {
		code := dispatch(ctx, append([]string{"fakebackend"}, args...), pw, p.stderr)
		pw.Close()
		p.done <- code
	}()
	t.Cleanup(func() {
		cancel()
		go io.Copy(io.Discard, pr)
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		code := <-p.done
		t.Fatalf("no ready line (exit %d): %v\nstderr: %s", code, err, p.stderr)
	}
	fields := strings.Fields(line)
	if len(fields) != 4 || fields[0] != "listening" {
		t.Fatalf("ready line %q: want \"listening data=A control=A name=N\"", line)
	}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "data":
			p.data = v
		case "control":
			p.control = v
		case "name":
			p.name = v
		}
	}
	return p
}

func TestFakebackendCommandServesUntilCancelled(t *testing.T) {
	p := startFakebackend(t, "--name", "b1", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0")
	if p.name != "b1" {
		t.Errorf("ready line names %q, want b1", p.name)
	}
	r, err := fakebackend.Dial("http://" + p.control)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Name() != "b1" || r.Addr() != p.data || r.URL() != "http://"+p.data {
		t.Errorf("control API says %q at %q (%q), ready line said data=%s", r.Name(), r.URL(), r.Addr(), p.data)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Enqueue(ctx, fakebackend.Behaviour{Status: 418, Body: fakebackend.Text("teapot")}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(r.URL() + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 418 || string(body) != "teapot" || resp.Header.Get("X-Proxyspec-Backend") != "b1" {
		t.Errorf("data plane answered %d %q from %q; want the queued 418 teapot from b1", resp.StatusCode, body, resp.Header.Get("X-Proxyspec-Backend"))
	}
	reqs, err := r.WaitRequests(ctx, 1)
	if err != nil || len(reqs) != 1 || reqs[0].Target != "/hello" {
		t.Fatalf("recorded %+v, %v; want GET /hello", reqs, err)
	}

	// A long poll in flight must not hold up the stop.
	waiting := make(chan error, 1)
	go func() {
		_, err := r.WaitRequests(context.Background(), 100)
		waiting <- err
	}()
	// Nor must a connection that never sends a request, as net/http's
	// Transport leaves behind when it dials for a request that then takes
	// an idle connection: Shutdown alone waits five seconds for it.
	idle, err := net.Dial("tcp", p.control)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// A control round trip gives the poll time to be parked; nothing from
	// outside shows that it is, so should it not be yet, this check is
	// weaker, never wrong.
	if _, err := r.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	p.stop()
	select {
	case code := <-p.done:
		if code != 0 {
			t.Errorf("exit %d after cancel, want 0; stderr: %s", code, p.stderr)
		}
	case <-time.After(shutdownGrace / 2):
		t.Fatal("the command did not stop promptly on cancel")
	}
	if err := <-waiting; err == nil {
		t.Error("a long poll survived the stop")
	}
	for _, addr := range []string{p.data, p.control} {
		if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial %s after stop: %v, want connection refused", addr, err)
		}
	}
}

func TestFakebackendCommandUsage(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()

	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"-h"}, 0, "--listen"},
		{[]string{"--port", "1"}, 2, "flag provided but not defined: -port"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--listen", taken.Addr().String()}, 2, "address already in use"},
		{[]string{"--control", taken.Addr().String()}, 2, "control listener"},
		{[]string{"--listen", "nowhere"}, 2, "nowhere"},
	} {
		var stdout, stderr bytes.Buffer
		code := dispatch(context.Background(), append([]string{"fakebackend"}, tc.args...), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("fakebackend %q: exit %d, stderr %q; want %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
		if tc.code != 0 && stdout.Len() > 0 {
			t.Errorf("fakebackend %q: printed %q on a failure", tc.args, stdout.String())
		}
	}
}
