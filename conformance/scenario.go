package conformance

import (
	"fmt"

	"github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/proxyspec/proxyspec/fakebackend"
	"github.com/proxyspec/proxyspec/scenarios"
)

// loadScenarios returns the built-in scenarios and those under dirs; any
// problem in any file (file:line: reason) stops the run before it starts.
func loadScenarios(dirs []string) ([]scenarios.Scenario, error) {
	builtin, err := scenarios.Builtin()
	if err != nil {
		return nil, fmt.Errorf("conformance: built-in scenarios: %w", err)
	}
	sets := [][]scenarios.Scenario{builtin}
	for _, d := range dirs {
		sc, err := scenarios.LoadDir(d)
		if err != nil {
			return nil, fmt.Errorf("conformance: scenarios in %s:\n%w", d, err)
		}
		sets = append(sets, sc)
	}
	all, err := scenarios.Merge(sets...)
	if err != nil {
		return nil, fmt.Errorf("conformance: scenarios: %w", err)
	}
	return all, nil
}

// scenarioMeta is a scenario's metadata as a spec's.
func scenarioMeta(sc scenarios.Scenario) Meta {
	// Every scenario carries the label "scenario", so that a filter can
	// keep or drop them all.
	m := Meta{ID: sc.ID, Title: sc.Title, Level: Level(sc.Level), Source: sc.Source, Feature: sc.Feature,
		Labels: append([]string{"scenario"}, sc.Labels...)}
	for _, f := range sc.Needs {
		m.Needs = append(m.Needs, Feature(f))
	}
	for _, p := range sc.Profiles {
		m.Profiles = append(m.Profiles, Profile(p))
	}
	return m
}

// declareScenarios declares one spec per scenario, located at its file.
func declareScenarios(s *Suite, scs []scenarios.Scenario) {
	for _, sc := range scs {
		at := codeLocation{FileName: sc.File, LineNumber: sc.Line}
		s.it(scenarioMeta(sc), at, func(e *Env) { runScenario(e, sc) })
	}
}

// runScenario starts the scenario's topology and runs its steps; every
// failed expectation fails the spec, and the step evidence is kept.
func runScenario(e *Env, sc scenarios.Scenario) {
	t := sc.Topology()
	// Needs implied by the topology are already in the scenario's metadata.
	e.start(t.Names(), Topology{PathPrefix: t.PathPrefix, ConnectTimeout: t.ConnectTimeout, ReadTimeout: t.ReadTimeout}, nil)
	backends := make(map[string]fakebackend.Backend, len(e.Backends))
	for _, b := range e.Backends {
		backends[b.Name()] = b
	}
	res, err := sc.Run(e.ctx, scenarios.Env{Backends: backends, ProxyAddr: e.Proxy, Profile: string(e.Profile()), Margin: e.cfg.Margin})
	e.mu.Lock()
	e.scenario = &res
	e.mu.Unlock()
	Expect(err).NotTo(HaveOccurred(), "running scenario %s (%s:%d)", sc.ID, sc.File, sc.Line)
	if !res.Passed() {
		ginkgo.Fail(fmt.Sprintf("scenario %s (%s:%d):\n%s", sc.ID, sc.File, sc.Line, res.Summary()))
	}
}
