package conformance

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/formatter"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
)

// Test runs the whole suite against cfg.Subject from an implementer's
// go test:
//
//	func TestConformance(t *testing.T) {
//		conformance.Test(t, conformance.Config{Subject: conformance.Handler("mine", build)})
//	}
//
// Ginkgo's flags (-ginkgo.label-filter, -ginkgo.v, ...) apply as usual.
// RunSpecs can run once per test binary, so call Test from one test only.
func Test(t *testing.T, cfg Config) {
	t.Helper()
	RegisterFailHandler(ginkgo.Fail)
	pool, err := register(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closePool(t, pool)
	suite, reporter := ginkgo.GinkgoConfiguration()
	ginkgo.RunSpecs(t, suiteName(&cfg), suite, reporter)
}

func closePool(t *testing.T, p *lazyPool) {
	if err := p.close(); err != nil {
		t.Errorf("closing fake backends: %v", err)
	}
}

// Register declares the suite's specs inside the caller's own Ginkgo suite;
// call it at the top level of a _test.go file:
//
//	var _ = conformance.Register(&conformance.Config{Subject: subject})
//
// A bad Config becomes one failing spec. Reports (cfg.ReportJSON,
// cfg.JUnitReport, cfg.Output) are written after the suite, and what the
// specs started (container backends) is removed then too; see Cleanup for
// parallel runs.
func Register(cfg *Config) bool {
	pool, err := register(cfg, nil)
	if err != nil {
		ginkgo.Describe("proxyspec conformance", func() {
			ginkgo.It("has a valid configuration", func() { setupFailed(err.Error(), "") })
		})
		return true
	}
	registered.mu.Lock()
	registered.pools = append(registered.pools, pool)
	first := len(registered.pools) == 1
	registered.mu.Unlock()
	if first {
		// A reporting node, because the caller's suite may have its own
		// AfterSuite and Ginkgo allows one; several Register calls share it.
		ginkgo.ReportAfterSuite("proxyspec cleanup", func(types.Report) {
			Expect(Cleanup()).To(Succeed(), "removing the conformance specs' fake backends")
		})
	}
	return true
}

// registered holds the pools of the specs Register declared in this process.
var registered struct {
	mu    sync.Mutex
	pools []*lazyPool
}

// Cleanup removes, in this process, what the specs declared by Register
// have started: the fake backends, their containers, network and image.
// Register's suite does it by itself when it ends. Under ginkgo -p that
// happens on process 1 only, so a parallel suite calls Cleanup from every
// process:
//
//	var _ = SynchronizedAfterSuite(func() {
//		Expect(conformance.Cleanup()).To(Succeed())
//	}, func() {})
//
// What a process killed before cleaning up left behind is removed by the
// next run that uses container backends.
func Cleanup() error {
	registered.mu.Lock()
	defer registered.mu.Unlock()
	var errs []error
	for _, p := range registered.pools {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

// Run runs the suite in this process outside go test, as `proxyspec run`
// does, and returns the report; an error means nothing could run. It calls
// Ginkgo's RunSpecs, which can run once per process. Ginkgo's own console
// output is silenced unless verbose is set; cfg.Output gets the progress.
func Run(cfg Config, verbose bool) (Report, error) {
	RegisterFailHandler(ginkgo.Fail)
	var (
		rep Report
		got bool
	)
	pool, err := register(&cfg, func(r Report) { rep, got = r, true })
	if err != nil {
		return rep, err
	}
	suite, reporter := ginkgo.GinkgoConfiguration()
	reporter.Verbose = verbose
	if !verbose {
		// Ginkgo writes its reporter's output to this package variable;
		// our progress lines replace it.
		saved := formatter.ColorableStdOut
		formatter.ColorableStdOut = io.Discard
		defer func() { formatter.ColorableStdOut = saved }()
	}
	ginkgo.RunSpecs(failer{}, suiteName(&cfg), suite, reporter)
	if err := pool.close(); err != nil {
		return rep, fmt.Errorf("closing fake backends: %w", err)
	}
	if !got {
		return rep, fmt.Errorf("conformance: the suite ended without a report")
	}
	return rep, nil
}

// failer stands in for *testing.T when RunSpecs runs from a plain main.
type failer struct{}

func (failer) Fail() {}

func suiteName(c *Config) string {
	name := "?"
	if c.Subject != nil {
		name = c.Subject.Name()
	}
	return fmt.Sprintf("proxyspec conformance (%s, profile %s)", name, c.Profile)
}

// register fills in cfg's defaults and declares the specs of cfg.Profile
// that pass cfg.LabelFilter, with the reporting nodes. done, if not nil,
// gets the report after the suite.
func register(cfg *Config, done func(Report)) (*lazyPool, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	*cfg = c
	keep := func([]string) bool { return true }
	if c.LabelFilter != "" {
		if keep, err = types.ParseLabelFilter(c.LabelFilter); err != nil {
			return nil, fmt.Errorf("conformance: label filter %q: %w", c.LabelFilter, err)
		}
	}
	focus := regexp.MustCompile("")
	if c.Focus != "" {
		if focus, err = regexp.Compile(c.Focus); err != nil {
			return nil, fmt.Errorf("conformance: focus %q: %w", c.Focus, err)
		}
	}
	scs, err := loadScenarios(cfg.Scenarios)
	if err != nil {
		return nil, err
	}
	var all []Meta
	declare(scs, func(m Meta, _ codeLocation, _ func(*Env)) { all = append(all, m) })
	if err := checkCatalog(all); err != nil {
		return nil, err
	}
	pool := &lazyPool{cfg: cfg}
	metas := map[string]Meta{}

	ginkgo.Describe(suiteName(cfg), func() {
		ginkgo.ReportAfterEach(func(sr ginkgo.SpecReport) {
			m, ok := metas[sr.LeafNodeText]
			if ok && cfg.Output != nil {
				progressLine(cfg.Output, result(m, sr))
			}
		})
		// The backend pool is got in a setup node with a bound of its own:
		// the first spec to need it may wait minutes for an image build,
		// and that wait is the kit's, not the spec's, so it must not count
		// against SpecTimeout (which in Ginkgo spans the setup nodes too;
		// hence NodeTimeout on the It).
		var p backendPool
		ginkgo.BeforeEach(func(ginkgo.SpecContext) {
			m := metas[ginkgo.CurrentSpecReport().LeafNodeText]
			ginkgo.AddReportEntry(entryMeta, m, ginkgo.ReportEntryVisibilityNever)
			skipIfLacking(cfg.Subject, m.Needs)
			var err error
			if p, err = pool.get(); err != nil {
				setupFailed(err.Error(), "")
			}
		}, ginkgo.NodeTimeout(poolStartTimeout+time.Minute))
		declare(scs, func(m Meta, at codeLocation, body func(*Env)) {
			if !m.In(cfg.Profile) || !keep(m.GinkgoLabels()) || !focus.MatchString(m.ID) {
				return
			}
			text := m.ID + ": " + m.Title
			metas[text] = m
			ginkgo.It(text, at, ginkgo.Label(m.GinkgoLabels()...), ginkgo.NodeTimeout(cfg.SpecTimeout), func(ctx ginkgo.SpecContext) {
				body(newEnv(ctx, cfg, m, p))
			})
		})
	})

	ginkgo.ReportAfterSuite("proxyspec reports", func(gr types.Report) {
		r := buildReport(cfg, metas, gr)
		if cfg.ReportJSON != "" {
			Expect(r.WriteFile(cfg.ReportJSON)).To(Succeed())
		}
		if cfg.JUnitReport != "" {
			Expect(reporters.GenerateJUnitReport(gr, cfg.JUnitReport)).To(Succeed())
		}
		if cfg.Output != nil {
			summary(cfg.Output, r)
		}
		if done != nil {
			done(r)
		}
	})
	return pool, nil
}

// lazyPool starts the backend pool on first use, so that a run whose specs
// are all filtered out never touches Docker.
type lazyPool struct {
	cfg  *Config
	once sync.Once
	pool backendPool
	err  error
}

// startPool makes the pool; a variable so that a test can make it slow.
var startPool = newPool

func (l *lazyPool) get() (backendPool, error) {
	l.once.Do(func() { l.pool, l.err = startPool(l.cfg) })
	return l.pool, l.err
}

func (l *lazyPool) close() error {
	if l == nil {
		return nil
	}
	// Waits for a pool still being created (Do returns only once the first
	// call's function has), and makes any later get fail instead of
	// starting a pool nobody would close.
	l.once.Do(func() { l.err = errors.New("conformance: backend pool already closed") })
	if l.pool == nil {
		return nil
	}
	return l.pool.close()
}
