// Package peer holds the in-process peers: other Go reverse proxies measured
// by the suite next to the reference, so that the matrix shows what the
// standard library's net/http/httputil.ReverseProxy does with the seed's
// topologies. Each is configured the way a user would set it up to do what
// the seed describes, with the knobs it has and nothing more.
package peer

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/internal/reference"
)

// A builtin is a named in-process subject.
type builtin struct {
	name  string
	build func(conformance.Topology) (http.Handler, error)
	// lacks are the features the implementation cannot express.
	lacks []conformance.Feature
}

var builtins = []builtin{
	{name: "reference", build: func(t conformance.Topology) (http.Handler, error) {
		// The reference's logs are dropped: the evidence of each spec
		// already holds what went over the wire.
		return reference.New(t, nil)
	}},
	// httputil.ReverseProxy has no notion of a second backend: with one
	// per request and no retry, failover cannot be expressed.
	{name: "httputil", build: HTTPUtil, lacks: []conformance.Feature{conformance.FeatureFailover}},
	{name: "httputil-failover", build: Failover},
}

// Names lists the builtin subjects, the default ("reference") first.
func Names() []string {
	names := make([]string, len(builtins))
	for i, b := range builtins {
		names[i] = b.name
	}
	return names
}

// Subject returns the builtin subject called name, reported as report (name
// when empty), lacking its own missing features plus extra.
func Subject(name, report string, extra ...conformance.Feature) (conformance.Subject, error) {
	i := slices.IndexFunc(builtins, func(b builtin) bool { return b.name == name })
	if i < 0 {
		return nil, fmt.Errorf("unknown builtin subject %q (known: %v)", name, Names())
	}
	b := builtins[i]
	if report == "" {
		report = b.name
	}
	lacks := slices.Clone(b.lacks)
	for _, f := range extra {
		if !slices.Contains(lacks, f) {
			lacks = append(lacks, f)
		}
	}
	return conformance.Handler(report, b.build, lacks...), nil
}
