// Package mutant holds deliberately broken proxies: each is the reference
// proxy with exactly one defect, built from the outside (options, a
// wrapping RoundTripper, a Strategy, a handler or ResponseWriter wrapper)
// so that the reference itself stays untouched. They exist to prove that
// the conformance suite catches what it claims to catch: a defect that no
// spec fails is a hole in the suite.
package mutant

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/internal/reference"
	"github.com/proxyspec/proxyspec/proxy"
)

// A Mutant is the reference proxy with one deliberate defect.
type Mutant struct {
	Name   string // stable: tests and reports refer to it
	Defect string // what it does wrong, in one line
	build  func(t conformance.Topology) parts
}

// parts are how a mutant departs from the reference for one topology. Every
// field is optional.
type parts struct {
	opts      []proxy.Option
	transport func(http.RoundTripper) http.RoundTripper // around the reference's transport
	handler   func(http.Handler) http.Handler           // around the reference's handler
	stop      func()                                    // releases what the parts hold
}

// All returns every mutant, sorted by name.
func All() []Mutant {
	all := slices.Clone(table)
	slices.SortFunc(all, func(a, b Mutant) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return all
}

// Lookup returns the mutant called name.
func Lookup(name string) (Mutant, bool) {
	for _, m := range table {
		if m.Name == name {
			return m, true
		}
	}
	return Mutant{}, false
}

// Subject is the mutant as a conformance subject named "mutant/<name>",
// built fresh for each topology like the reference. Its attempt logs go to
// logs (io.Discard when nil).
func (m Mutant) Subject(logs io.Writer) conformance.Subject {
	return &subject{m: m, logs: logs}
}

type subject struct {
	m    Mutant
	logs io.Writer
}

func (s *subject) Name() string                 { return "mutant/" + s.m.Name }
func (s *subject) Lacks() []conformance.Feature { return nil }

// Start builds the mutant for t and serves it in process as the reference
// is served; stopping the instance also releases what the mutant holds
// (a connection pool).
func (s *subject) Start(ctx context.Context, t conformance.Topology) (conformance.Instance, error) {
	p := s.m.build(t)
	opts := p.opts
	// Every mutant gets the recording transport: it is how handler wrappers
	// learn what the backend answered before the proxy's rules applied.
	inner := p.transport
	opts = append(opts, proxy.WithRoundTripper(func(rt http.RoundTripper) http.RoundTripper {
		if inner != nil {
			rt = inner(rt)
		}
		return record(rt)
	}))
	rp, err := reference.New(t, s.logs, opts...)
	if err != nil {
		release(p)
		return nil, fmt.Errorf("mutant %s: %w", s.m.Name, err)
	}
	var h http.Handler = rp
	if p.handler != nil {
		h = p.handler(h)
	}
	h = track(h)
	inst, err := conformance.Handler(s.Name(), func(conformance.Topology) (http.Handler, error) {
		return h, nil
	}).Start(ctx, t)
	if err != nil {
		release(p)
		return nil, err
	}
	return &instance{Instance: inst, p: p}, nil
}

func release(p parts) {
	if p.stop != nil {
		p.stop()
	}
}

type instance struct {
	conformance.Instance
	p parts
}

func (i *instance) Stop(ctx context.Context) error {
	defer release(i.p)
	return i.Instance.Stop(ctx)
}
