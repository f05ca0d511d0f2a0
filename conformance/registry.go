package conformance

import (
	"fmt"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/proxyspec/proxyspec/scenarios"
)

// group is one feature area: a file of specs that registers itself in init.
type group struct {
	name   string
	define func(s *Suite)
}

var groups []group

// addGroup registers a feature area. define declares the area's specs with
// s.It and Table; it is called once to build the Catalog and once per Register,
// so it must do nothing but declare.
func addGroup(name string, define func(s *Suite)) {
	for _, g := range groups {
		if g.name == name {
			panic(fmt.Sprintf("conformance: spec group %q registered twice", name))
		}
	}
	groups = append(groups, group{name: name, define: define})
}

// Catalog returns the Meta of every built-in spec, Go specs then built-in
// scenarios, without running anything.
func Catalog() []Meta {
	ms, err := catalog(nil)
	if err != nil {
		// The built-in scenarios are embedded and tested: a build defect.
		panic(err)
	}
	return ms
}

// CatalogWith is Catalog plus the scenarios under dirs.
func CatalogWith(dirs ...string) ([]Meta, error) { return catalog(dirs) }

func catalog(dirs []string) ([]Meta, error) {
	scs, err := loadScenarios(dirs)
	if err != nil {
		return nil, err
	}
	var out []Meta
	declare(scs, func(m Meta, _ codeLocation, _ func(*Env)) { out = append(out, m) })
	return out, nil
}

// declare runs every spec group, then the scenarios, through one declare
// function: the single place that enumerates specs.
func declare(scs []scenarios.Scenario, fn func(m Meta, at codeLocation, body func(*Env))) {
	for _, g := range groups {
		g.define(&Suite{feature: g.name, declare: fn})
	}
	declareScenarios(&Suite{feature: "scenarios", declare: fn}, scs)
}

// Suite is what a spec group declares its specs on.
type Suite struct {
	feature string
	declare func(m Meta, at codeLocation, body func(e *Env))
}

// It declares one spec. m.Feature defaults to the group's name. body gets a
// fresh Env per run of the spec; it starts its topology with e.Start.
func (s *Suite) It(m Meta, body func(e *Env)) {
	s.it(m, types.NewCodeLocation(1), body)
}

func (s *Suite) it(m Meta, at types.CodeLocation, body func(e *Env)) {
	if m.Feature == "" {
		m.Feature = s.feature
	}
	s.declare(m, at, body)
}

// Case is one entry of a Table: the spec's Meta (merged over the table's
// base Meta) and the argument its body gets.
type Case[T any] struct {
	Meta Meta
	Arg  T
	at   types.CodeLocation
}

// Entry makes a Case. Only the fields of m that differ from the table's base
// need to be set, usually ID and Title.
func Entry[T any](m Meta, arg T) Case[T] {
	return Case[T]{Meta: m, Arg: arg, at: types.NewCodeLocation(1)}
}

// Table declares one spec per case, all sharing body and the fields of base
// that a case leaves empty.
func Table[T any](s *Suite, base Meta, body func(e *Env, arg T), cases ...Case[T]) {
	for _, c := range cases {
		arg := c.Arg
		s.it(base.merge(c.Meta), c.at, func(e *Env) { body(e, arg) })
	}
}

// merge returns base with every non-empty field of over replacing it.
func (base Meta) merge(over Meta) Meta {
	m := base
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&m.ID, over.ID)
	set(&m.Title, over.Title)
	set(&m.Source, over.Source)
	set(&m.Feature, over.Feature)
	if over.Level != "" {
		m.Level = over.Level
	}
	if over.Needs != nil {
		m.Needs = over.Needs
	}
	if over.Profiles != nil {
		m.Profiles = over.Profiles
	}
	if over.Labels != nil {
		m.Labels = over.Labels
	}
	return m
}

// In reports whether the spec belongs to profile p.
func (m Meta) In(p Profile) bool { return slices.Contains(m.Profiles, p) }

// GinkgoLabels are the labels a spec carries: its feature, level, profiles
// and extra labels, with the characters Ginkgo forbids in labels replaced.
func (m Meta) GinkgoLabels() []string {
	ls := []string{m.Feature, string(m.Level)}
	for _, p := range m.Profiles {
		ls = append(ls, string(p))
	}
	ls = append(ls, m.Labels...)
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		l = labelSafe(l)
		if l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// labelSafe replaces what Ginkgo does not accept in a label ("&|!,()/" and a
// colon, which would make it a label set).
func labelSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("&|!,()/:", r) {
			return '-'
		}
		return r
	}, strings.TrimSpace(s))
}

// validate reports what is missing or wrong in m.
func (m Meta) validate() error {
	var missing []string
	if m.ID == "" {
		missing = append(missing, "id")
	}
	if m.Title == "" {
		missing = append(missing, "title")
	}
	switch m.Level {
	case MUST, SHOULD, MAY:
	default:
		missing = append(missing, fmt.Sprintf("level (got %q)", m.Level))
	}
	if m.Source == "" {
		missing = append(missing, "source")
	}
	if m.Feature == "" {
		missing = append(missing, "feature")
	}
	if len(m.Profiles) == 0 {
		missing = append(missing, "profiles")
	}
	for _, p := range m.Profiles {
		if p != ProfileSeed && p != ProfileRFC9110 {
			missing = append(missing, fmt.Sprintf("known profile (got %q)", p))
		}
	}
	if strings.ContainsAny(m.ID, " \t\r\n") {
		missing = append(missing, "an id without whitespace")
	}
	if len(missing) > 0 {
		return fmt.Errorf("spec %q lacks %s", m.ID, strings.Join(missing, ", "))
	}
	return nil
}

// checkCatalog returns an error for duplicate IDs or incomplete metadata.
func checkCatalog(ms []Meta) error {
	seen := map[string]bool{}
	var errs []string
	for _, m := range ms {
		if err := m.validate(); err != nil {
			errs = append(errs, err.Error())
		}
		if seen[m.ID] {
			errs = append(errs, fmt.Sprintf("spec id %q declared twice", m.ID))
		}
		seen[m.ID] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("conformance: bad catalog:\n%s", strings.Join(errs, "\n"))
	}
	return nil
}

// codeLocation is where a spec was declared, for Ginkgo's reports.
type codeLocation = types.CodeLocation
