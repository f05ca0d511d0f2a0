// Package matrix lays the JSON reports of several runs side by side: one row
// per spec, grouped by feature, one column per implementation and profile.
// It renders the matrix as Markdown (for a README) and as a self-contained
// HTML page (for a CI artifact), and compares reports with the expected
// verdicts that gate a CI run.
package matrix

import (
	"fmt"
	"slices"

	"github.com/proxyspec/proxyspec/conformance"
)

// Matrix is the cross-implementation view of a set of reports.
type Matrix struct {
	Columns []Column
	Groups  []Group
}

// Column is one run: an implementation measured against one profile.
type Column struct {
	Subject string
	Profile conformance.Profile
	Totals  conformance.Totals
	// SuiteFailures are the run's failures outside any spec.
	SuiteFailures []string
}

// Name is the column's heading, "nginx (seed)".
func (c Column) Name() string { return fmt.Sprintf("%s (%s)", c.Subject, c.Profile) }

// Group is the rows of one feature, in the order the suite declares them.
type Group struct {
	Feature string
	Rows    []Row
}

// Row is one spec and its outcome in every column.
type Row struct {
	conformance.Meta
	Cells []Cell // one per column, in the matrix's column order
}

// Cell is a spec's outcome in one run. State is empty when the run did not
// include the spec (another profile, or a filtered run).
type Cell struct {
	State  conformance.State
	Reason string // one line, for every state but passed
}

// Build lays reports side by side. Columns are ordered by profile (seed
// first), then by subject in the order subjects first appear; two reports for
// the same subject and profile are an error, since a cell could hold either.
func Build(reports ...conformance.Report) (Matrix, error) {
	var m Matrix
	reports = slices.Clone(reports)
	first := map[string]int{}
	for i, r := range reports {
		if _, ok := first[r.Subject]; !ok {
			first[r.Subject] = i
		}
	}
	slices.SortStableFunc(reports, func(a, b conformance.Report) int {
		if d := profileRank(a.Profile) - profileRank(b.Profile); d != 0 {
			return d
		}
		return first[a.Subject] - first[b.Subject]
	})
	for i := 1; i < len(reports); i++ {
		if reports[i].Subject == reports[i-1].Subject && reports[i].Profile == reports[i-1].Profile {
			return m, fmt.Errorf("two reports for %s, profile %s", reports[i].Subject, reports[i].Profile)
		}
	}

	type at struct{ group, row int }
	where := map[string]at{}
	groupOf := map[string]int{}
	for c, r := range reports {
		m.Columns = append(m.Columns, Column{Subject: r.Subject, Profile: r.Profile, Totals: r.Totals, SuiteFailures: r.SuiteFailures})
		for _, res := range r.Specs {
			pos, ok := where[res.ID]
			if !ok {
				g, ok := groupOf[res.Feature]
				if !ok {
					g = len(m.Groups)
					groupOf[res.Feature] = g
					m.Groups = append(m.Groups, Group{Feature: res.Feature})
				}
				pos = at{g, len(m.Groups[g].Rows)}
				where[res.ID] = pos
				m.Groups[g].Rows = append(m.Groups[g].Rows, Row{Meta: res.Meta, Cells: make([]Cell, len(reports))})
			}
			cell := Cell{State: res.State}
			if res.State != conformance.StatePassed {
				cell.Reason = Reason(res.Failure)
			}
			m.Groups[pos.group].Rows[pos.row].Cells[c] = cell
		}
	}
	return m, nil
}

// profileRank orders the profiles: seed, rfc9110, then any other.
func profileRank(p conformance.Profile) int {
	switch p {
	case conformance.ProfileSeed:
		return 0
	case conformance.ProfileRFC9110:
		return 1
	}
	return 2
}

// Profiles lists the profiles of the matrix's columns, in column order.
func (m Matrix) Profiles() []conformance.Profile {
	var ps []conformance.Profile
	for _, c := range m.Columns {
		if !slices.Contains(ps, c.Profile) {
			ps = append(ps, c.Profile)
		}
	}
	slices.SortFunc(ps, func(a, b conformance.Profile) int { return profileRank(a) - profileRank(b) })
	return ps
}

// Agree reports whether every column that ran the spec got the same state.
func (r Row) Agree() bool {
	var s conformance.State
	for _, c := range r.Cells {
		switch {
		case c.State == "":
		case s == "":
			s = c.State
		case c.State != s:
			return false
		}
	}
	return true
}
