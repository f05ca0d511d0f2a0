package conformance_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/proxyspec/proxyspec/conformance"
)

func helperCommand(t *testing.T, extra ...string) conformance.CommandConfig {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return conformance.CommandConfig{
		Name: "helper",
		Args: append([]string{exe, "{{.ConfigFile}}"}, extra...),
		ConfigTemplate: "listen {{.Listen}} host {{.ListenHost}} port {{.ListenPort}}\n" +
			"{{range .Backends}}backend {{.Name}} {{.URL}} {{.Host}} {{.Port}}\n{{end}}" +
			"prefix {{.PathPrefix}} connect {{.ConnectTimeoutMS}} read {{.ReadTimeoutMS}}\n",
		ConfigName: "helper.conf",
		Env:        []string{helperEnv + "=proxy"},
		StopGrace:  2 * time.Second,
	}
}

func TestCommandSubject(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "from backend "+r.URL.Path)
	}))
	defer backend.Close()
	u := strings.TrimPrefix(backend.URL, "http://")
	host, port, _ := net.SplitHostPort(u)
	topo := conformance.Topology{
		Backends:       []conformance.Endpoint{{Name: "a", URL: backend.URL, Host: host, Port: mustAtoi(t, port)}},
		PathPrefix:     "/api",
		ConnectTimeout: 250 * time.Millisecond,
		ReadTimeout:    1500 * time.Millisecond,
	}
	ctx := context.Background()
	inst, err := conformance.Command(helperCommand(t, "spawn")).Start(ctx, topo)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			inst.Stop(ctx)
		}
	}()

	resp, err := http.Get("http://" + inst.Addr() + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "from backend /api/x" {
		t.Errorf("through the command subject: %q", body)
	}

	out := waitOutput(t, inst, "grandchild listening on ")
	lhost, lport, _ := net.SplitHostPort(inst.Addr())
	wantConfig := "listen " + inst.Addr() + " host " + lhost + " port " + lport + "\n" +
		"backend a " + backend.URL + " " + host + " " + port + "\n" +
		"prefix /api connect 250 read 1500\n"
	if !strings.Contains(out, wantConfig) {
		t.Errorf("rendered config not as expected; output:\n%s\nwant:\n%s", out, wantConfig)
	}
	dir := regexp.MustCompile(`config (\S+)/helper.conf:`).FindStringSubmatch(out)
	if dir == nil {
		t.Fatalf("no config path in output:\n%s", out)
	}
	if _, err := os.Stat(dir[1]); err != nil {
		t.Errorf("private dir while running: %v", err)
	}
	grandchild := regexp.MustCompile(`grandchild listening on (\S+)`).FindStringSubmatch(out)[1]

	if err := inst.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	stopped = true
	if !strings.Contains(inst.Output(), "stopped by SIGTERM") {
		t.Errorf("the subject was not stopped by SIGTERM:\n%s", inst.Output())
	}
	if _, err := os.Stat(dir[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private dir %s after stop: %v", dir[1], err)
	}
	// The grandchild ignored SIGTERM; the group's SIGKILL must have ended
	// it, and its listening socket with it.
	if c, err := net.Dial("tcp", grandchild); err == nil {
		c.Close()
		t.Errorf("the grandchild still accepts on %s: the process group was not killed", grandchild)
	}
}

// waitOutput polls, bounded, for the subject's output to contain s: output
// arrives through a pipe with no event to await.
func waitOutput(t *testing.T, inst conformance.Instance, s string) string {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for !strings.Contains(inst.Output(), s) {
		select {
		case <-deadline.C:
			t.Fatalf("output never contained %q:\n%s", s, inst.Output())
		case <-poll.C:
		}
	}
	return inst.Output()
}

func TestCommandExitsAtOnce(t *testing.T) {
	s := conformance.Command(conformance.CommandConfig{CommandLine: `sh -c 'echo "no config for you" >&2; exit 3'`})
	if s.Name() != "sh" {
		t.Errorf("default name %q, want sh", s.Name())
	}
	_, err := s.Start(context.Background(), conformance.Topology{})
	se, ok := errors.AsType[*conformance.StartError](err)
	if !ok {
		t.Fatalf("got %v, want a StartError", err)
	}
	if !strings.Contains(se.Output, "no config for you") || !strings.Contains(err.Error(), "exited before accepting connections") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q, output %q", err, se.Output)
	}
}

func TestCommandTemplateErrors(t *testing.T) {
	for name, c := range map[string]conformance.CommandConfig{
		"missing key":  {CommandLine: "true", ConfigTemplate: "x {{.Nope}}"},
		"bad template": {CommandLine: "true", ConfigTemplate: "x {{.Listen"},
		"bad quoting":  {CommandLine: "sh -c 'echo"},
		"empty":        {CommandLine: "  "},
	} {
		_, err := conformance.Command(c).Start(context.Background(), conformance.Topology{})
		if err == nil {
			t.Errorf("%s: started", name)
			continue
		}
		if _, ok := errors.AsType[*conformance.StartError](err); !ok {
			t.Errorf("%s: %v is not a StartError", name, err)
		}
	}
}

func TestSplitCommandLine(t *testing.T) {
	for in, want := range map[string][]string{
		`nginx -p /d -c /d/n.conf -g 'daemon off;'`: {"nginx", "-p", "/d", "-c", "/d/n.conf", "-g", "daemon off;"},
		`go run ./cmd/proxyspec proxy`:              {"go", "run", "./cmd/proxyspec", "proxy"},
		`a "b c" d\ e '' "x\"y\\z" 'it''s'`:         {"a", "b c", "d e", "", `x"y\z`, "its"},
		"  spaced\t\targs  ":                        {"spaced", "args"},
		`"$HOME"`:                                   {"$HOME"},
	} {
		got, err := conformance.SplitCommandLine(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("SplitCommandLine(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `trailing\`} {
		if _, err := conformance.SplitCommandLine(bad); err == nil {
			t.Errorf("SplitCommandLine(%q) accepted", bad)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
