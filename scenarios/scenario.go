// Package scenarios holds declarative conformance scenarios: YAML files that
// describe a topology of fake backends, a sequence of requests and faults,
// and what the client and each backend must see. The built-in files are
// embedded in the binary; users add their own folder.
//
// Loading is strict: an unknown key, a wrong type, a missing id, a
// duplicate id, an unknown backend name, a bad status or duration, an
// unknown mode or fault, all reject the file with file:line: reason before
// anything runs. README.md documents the schema.
//
// A loaded Scenario runs without Ginkgo: Run drives a proxy under test
// through the steps and returns the evidence and every failed expectation,
// for the conformance package to turn into a spec verdict.
package scenarios

import (
	"time"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// Scenario is one validated scenario. The exported fields are its metadata,
// with the meaning of conformance.Meta (plain strings here so that this
// package does not import conformance).
type Scenario struct {
	ID       string   `json:"id"`    // e.g. "scenario/failover/two-down"
	Title    string   `json:"title"` // one line, what the proxy must do
	Level    string   `json:"level"` // MUST, SHOULD, MAY
	Source   string   `json:"source"`
	Feature  string   `json:"feature"`
	Profiles []string `json:"profiles"`
	// Needs lists the features (conformance.Feature values) a subject must
	// have. "path-prefix" and "multi-backend" are added when the topology
	// implies them, so a file cannot forget them.
	Needs       []string `json:"needs,omitempty"`
	Labels      []string `json:"labels,omitempty"`
	Description string   `json:"description,omitempty"`

	// File and Line locate the scenario's id in its file.
	File string `json:"file"`
	Line int    `json:"line"`

	doc       document
	stepLines []int
	finalLine int
}

// Topology is what the caller must start before Run: one fake backend per
// entry, in this order (round-robin order matters), and a proxy under test
// forwarding to them with this prefix and these timeouts. The backends' modes
// and behaviours are applied by Run itself; the caller only starts them.
type Topology struct {
	Backends       []BackendSpec `json:"backends"`
	PathPrefix     string        `json:"path_prefix,omitempty"`
	ConnectTimeout time.Duration `json:"connect_timeout"`
	ReadTimeout    time.Duration `json:"read_timeout"`
}

// BackendSpec is one backend of a topology and its initial state.
type BackendSpec struct {
	Name    string                  `json:"name"`
	Mode    fakebackend.Mode        `json:"mode"`
	Default fakebackend.Behaviour   `json:"default"`
	Queue   []fakebackend.Behaviour `json:"queue,omitempty"`
}

// Names returns the backend names in order.
func (t Topology) Names() []string {
	names := make([]string, len(t.Backends))
	for i, b := range t.Backends {
		names[i] = b.Name
	}
	return names
}

// Topology returns the scenario's topology. It is a copy: changing it does
// not change the scenario.
func (s Scenario) Topology() Topology {
	t := Topology{
		PathPrefix:     s.doc.Topology.PathPrefix,
		ConnectTimeout: s.doc.Topology.ConnectTimeout.Std(),
		ReadTimeout:    s.doc.Topology.ReadTimeout.Std(),
	}
	for _, b := range s.doc.Topology.Backends {
		spec := BackendSpec{Name: b.Name, Mode: b.Mode, Queue: append([]fakebackend.Behaviour(nil), b.Queue...)}
		if spec.Mode == "" {
			spec.Mode = fakebackend.Serve
		}
		if b.Default != nil {
			spec.Default = *b.Default
		}
		t.Backends = append(t.Backends, spec)
	}
	return t
}

// Steps is the number of steps, for reports.
func (s Scenario) Steps() int { return len(s.doc.Steps) }

func (s Scenario) String() string { return s.ID }
