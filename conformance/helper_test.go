package conformance_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
)

// helperEnv makes the test binary act as a command subject instead of
// running tests: a small program following the PROXYSPEC_* contract.
const helperEnv = "PROXYSPEC_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "proxy":
		os.Exit(helperProxy())
	case "listen":
		os.Exit(helperListen())
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperProxy serves roundRobin on PROXYSPEC_LISTEN until SIGTERM. It
// prints the file named by its first argument (the rendered config), and,
// with a second argument "spawn", starts a grandchild and prints its port.
func helperProxy() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 {
		b, err := os.ReadFile(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("config %s:\n%s", os.Args[1], b)
	}
	if len(os.Args) > 2 && os.Args[2] == "spawn" {
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), helperEnv+"=listen")
		child.Stdout, child.Stderr = os.Stdout, os.Stderr
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	t, err := topologyFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	h, err := roundRobin(t)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", os.Getenv("PROXYSPEC_LISTEN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Println("listening on", ln.Addr())
	<-ctx.Done()
	srv.Close()
	fmt.Println("stopped by SIGTERM")
	return 0
}

// helperListen holds a listening socket and prints its port; it ignores
// SIGTERM, so only SIGKILL to its group ends it.
func helperListen() int {
	signal.Ignore(syscall.SIGTERM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1
	}
	fmt.Printf("grandchild listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		c.Close()
	}
}

// topologyFromEnv reads the PROXYSPEC_* contract.
func topologyFromEnv() (conformance.Topology, error) {
	var t conformance.Topology
	for _, u := range strings.Split(os.Getenv("PROXYSPEC_BACKENDS"), ",") {
		if u != "" {
			t.Backends = append(t.Backends, conformance.Endpoint{URL: u})
		}
	}
	t.PathPrefix = os.Getenv("PROXYSPEC_PATH_PREFIX")
	for _, v := range []struct {
		name string
		dst  *time.Duration
	}{{"PROXYSPEC_CONNECT_TIMEOUT_MS", &t.ConnectTimeout}, {"PROXYSPEC_READ_TIMEOUT_MS", &t.ReadTimeout}} {
		ms, err := strconv.Atoi(os.Getenv(v.name))
		if err != nil {
			return t, fmt.Errorf("%s: %w", v.name, err)
		}
		*v.dst = time.Duration(ms) * time.Millisecond
	}
	return t, nil
}
