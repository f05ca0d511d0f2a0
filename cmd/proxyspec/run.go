package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/internal/peer"
)

func init() {
	register(command{name: "run", summary: "run the conformance suite against a proxy (the reference by default)", run: runCmd})
}

// runFlags are the flags of `proxyspec run`.
type runFlags struct {
	subjectCmd, subjectConfig, subjectImage, subjectLacks, subjectName string
	builtin                                                            string
	profile, labelFilter, focus, backends, reportJSON, junitReport     string
	scenarios                                                          stringList
	verbose                                                            bool
}

func runCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.builtin, "subject", "reference", "a builtin `subject`, in process: "+strings.Join(peer.Names(), ", "))
	fs.StringVar(&f.subjectCmd, "subject-cmd", "", "run the proxy under test as this command (split shell-like; a template over the topology, see below)")
	fs.StringVar(&f.subjectConfig, "subject-config", "", "a config `file` template rendered for --subject-cmd at each start, as {{.ConfigFile}}")
	fs.StringVar(&f.subjectImage, "subject-image", "", "run the proxy under test from this Docker `image`, on the network of container backends; 'self' is the kit's image running the reference")
	fs.StringVar(&f.subjectLacks, "subject-lacks", "", "comma-separated `features` the proxy cannot express; specs needing them are 'not-supported'")
	fs.StringVar(&f.subjectName, "subject-name", "", "the proxy's name in reports")
	fs.StringVar(&f.profile, "profile", string(conformance.ProfileSeed), "`profile` to run: seed or rfc9110")
	fs.StringVar(&f.labelFilter, "label-filter", "", "Ginkgo label `filter` on feature, level and profile labels, e.g. 'hop-by-hop && MUST'")
	fs.StringVar(&f.focus, "focus", "", "run only the specs whose ID matches this `regexp`")
	fs.StringVar(&f.backends, "backends", conformance.BackendsInProcess, "where fake backends run: inprocess or containers (the default with --subject-image)")
	fs.Var(&f.scenarios, "scenarios", "a `dir` of scenario files to run with the built-in ones (repeatable)")
	fs.StringVar(&f.reportJSON, "report-json", "", "write the JSON report to `file`")
	fs.StringVar(&f.junitReport, "junit-report", "", "write a JUnit report to `file`")
	fs.BoolVar(&f.verbose, "v", false, "also print Ginkgo's own detailed output")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: proxyspec run [flags]

Runs the conformance suite against a proxy under test: by default the
reference proxy, in process, with in-process fake backends.

Exit status: 0 when every MUST spec that ran passed (SHOULD and MAY failures
are reported but do not fail the run), 1 when a MUST spec failed, 2 on a
usage error or when a proxy or backend could not be set up.

A --subject-cmd gets, for every spec, a free loopback port and the topology
in PROXYSPEC_LISTEN, PROXYSPEC_BACKENDS (comma-separated URLs),
PROXYSPEC_PATH_PREFIX, PROXYSPEC_CONNECT_TIMEOUT_MS and
PROXYSPEC_READ_TIMEOUT_MS. The command line and the --subject-config file are
Go templates over {{.Listen}}, {{.ListenHost}}, {{.ListenPort}}, {{.Backends}}
(each {{.Name}} {{.URL}} {{.Host}} {{.Port}}), {{.PathPrefix}},
{{.ConnectTimeoutMS}}, {{.ReadTimeoutMS}}, {{.Dir}} (a private directory)
and {{.ConfigFile}}. Example:

  proxyspec run --subject-cmd 'nginx -p {{.Dir}} -c {{.ConfigFile}}' \
    --subject-config ci/peers/nginx/config.tmpl --subject-lacks via

With --backends containers the fake backends run in Docker containers (one
image built FROM scratch around this binary, one private network; all of it
removed at the end, also on SIGINT or SIGTERM). A --subject-image runs there
too, one container per spec, reaching the backends as http://a:8080, ...;
it listens on PROXYSPEC_LISTEN=0.0.0.0:8080. The image is never pulled.
--subject-image self is the kit's own image running 'proxyspec proxy'.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "proxyspec run: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if f.subjectImage != "" {
		explicit := false
		fs.Visit(func(fl *flag.Flag) { explicit = explicit || fl.Name == "backends" })
		if !explicit {
			f.backends = conformance.BackendsContainers
		} else if f.backends != conformance.BackendsContainers {
			fmt.Fprintf(stderr, "proxyspec run: --subject-image needs --backends %s: a container cannot reach backends in this process\n", conformance.BackendsContainers)
			return 2
		}
	}
	subject, err := f.subject()
	if err != nil {
		fmt.Fprintf(stderr, "proxyspec run: %v\n", err)
		return 2
	}
	rep, err := conformance.Run(conformance.Config{
		Subject:     subject,
		Profile:     conformance.Profile(f.profile),
		Backends:    f.backends,
		LabelFilter: f.labelFilter,
		Focus:       f.focus,
		ReportJSON:  f.reportJSON,
		JUnitReport: f.junitReport,
		Scenarios:   f.scenarios,
		Output:      stdout,
	}, f.verbose)
	if err != nil {
		fmt.Fprintf(stderr, "proxyspec run: %v\n", err)
		return 2
	}
	return rep.ExitCode()
}

// subject builds the proxy under test the flags describe.
func (f runFlags) subject() (conformance.Subject, error) {
	lacks, err := conformance.ParseFeatures(f.subjectLacks)
	if err != nil {
		return nil, fmt.Errorf("--subject-lacks: %w", err)
	}
	if f.subjectCmd != "" && f.subjectImage != "" {
		return nil, fmt.Errorf("--subject-cmd and --subject-image are exclusive")
	}
	if f.builtin != "reference" && (f.subjectCmd != "" || f.subjectImage != "") {
		return nil, fmt.Errorf("--subject %s and --subject-cmd or --subject-image are exclusive", f.builtin)
	}
	if f.subjectConfig != "" && f.subjectCmd == "" {
		return nil, fmt.Errorf("--subject-config needs --subject-cmd")
	}
	switch {
	case f.subjectCmd != "":
		c := conformance.CommandConfig{Name: f.subjectName, CommandLine: f.subjectCmd, Lacks: lacks}
		if f.subjectConfig != "" {
			b, err := os.ReadFile(f.subjectConfig)
			if err != nil {
				return nil, fmt.Errorf("--subject-config: %w", err)
			}
			c.ConfigTemplate = string(b)
			c.ConfigName = strings.TrimSuffix(filepath.Base(f.subjectConfig), ".tmpl")
		}
		return conformance.Command(c), nil
	case f.subjectImage != "":
		opts := []conformance.ContainerOption{conformance.ContainerLacks(lacks...)}
		if f.subjectName != "" {
			opts = append(opts, conformance.ContainerName(f.subjectName))
		}
		return conformance.Container(f.subjectImage, opts...), nil
	}
	return peer.Subject(f.builtin, f.subjectName, lacks...)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
