package matrix

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"regexp"

	"github.com/proxyspec/proxyspec/conformance"
)

//go:embed page.html
var pageText string

// page is the HTML matrix: one file, its style and script inline, so that a
// CI artifact opens as it is, offline.
var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"cite":   Cite,
	"reason": Reason,
	"label":  label,
	"rank":   rank,
	"anchor": anchor,
}).Parse(pageText))

// anchor is the HTML id of column col's failure of spec id: letters,
// digits and dashes only, so that the link and its target agree.
func anchor(col int, id string) string {
	return fmt.Sprintf("f%d-%s", col, nonWord.ReplaceAllString(id, "-"))
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

// label is a cell's text in HTML.
func label(s conformance.State) string {
	switch s {
	case conformance.StatePassed:
		return "pass"
	case conformance.StateFailed:
		return "FAIL"
	case conformance.StateNotSupported:
		return "n/s"
	case conformance.StateSetupFailed:
		return "setup"
	case conformance.StateSkipped:
		return "skip"
	}
	return ""
}

// rank orders states for sorting a column: problems first.
func rank(s conformance.State) string {
	switch s {
	case conformance.StateSetupFailed:
		return "0"
	case conformance.StateFailed:
		return "1"
	case conformance.StateNotSupported:
		return "2"
	case conformance.StateSkipped:
		return "3"
	case conformance.StatePassed:
		return "4"
	}
	return "5"
}

type profileHead struct {
	Name    string
	Span    int
	Columns []Column
}

// failure is one line of a column's list of reasons.
type failure struct {
	ID     string
	Level  conformance.Level
	State  conformance.State
	Reason string
}

// HTML writes the matrix as a self-contained page titled title.
func (m Matrix) HTML(w io.Writer, title string) error {
	data := struct {
		Matrix
		Title    string
		Specs    int
		Width    int
		Profiles []profileHead
		First    []bool // the column opens a profile's block
		Fails    [][]failure
	}{Matrix: m, Title: title, Width: 3 + len(m.Columns)}
	for _, g := range m.Groups {
		data.Specs += len(g.Rows)
	}
	for i, c := range m.Columns {
		first := i == 0 || m.Columns[i-1].Profile != c.Profile
		data.First = append(data.First, first)
		if first {
			data.Profiles = append(data.Profiles, profileHead{Name: "profile " + string(c.Profile)})
		}
		head := &data.Profiles[len(data.Profiles)-1]
		head.Span++
		head.Columns = append(head.Columns, c)
		var fs []failure
		for _, g := range m.Groups {
			for _, r := range g.Rows {
				if cell := r.Cells[i]; cell.Reason != "" {
					fs = append(fs, failure{ID: r.ID, Level: r.Level, State: cell.State, Reason: cell.Reason})
				}
			}
		}
		data.Fails = append(data.Fails, fs)
	}
	if err := page.Execute(w, data); err != nil {
		return fmt.Errorf("rendering the HTML matrix: %w", err)
	}
	return nil
}
