package matrix

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/proxyspec/proxyspec/conformance"
)

// symbols are the cells' marks in Markdown.
var symbols = map[conformance.State]string{
	conformance.StatePassed:       "✅",
	conformance.StateFailed:       "❌",
	conformance.StateNotSupported: "➖",
	conformance.StateSetupFailed:  "⚠️",
	conformance.StateSkipped:      "⏭",
	"":                            "",
}

// Markdown writes the matrix as one table per profile, columns being the
// implementations run against it, then the failures of each implementation
// with their one-line reasons. Headings are at level 4, for a README
// section.
func (m Matrix) Markdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "✅ pass · ❌ fail · ➖ not supported (the implementation declares it lacks a feature the spec needs) · ⚠️ setup failed · ⏭ skipped")
	for _, p := range m.Profiles() {
		var cols []int
		for i, c := range m.Columns {
			if c.Profile == p {
				cols = append(cols, i)
			}
		}
		fmt.Fprintf(bw, "\n#### Profile %s\n\n", p)
		fmt.Fprint(bw, "| spec | level | source |")
		for _, i := range cols {
			fmt.Fprintf(bw, " %s |", mdCell(m.Columns[i].Subject))
		}
		fmt.Fprint(bw, "\n|---|---|---|")
		fmt.Fprint(bw, strings.Repeat(":-:|", len(cols)))
		fmt.Fprintln(bw)
		for _, g := range m.Groups {
			rows := rowsIn(g, cols)
			if len(rows) == 0 {
				continue
			}
			fmt.Fprintf(bw, "| **%s** | | |%s\n", mdCell(g.Feature), strings.Repeat(" |", len(cols)))
			for _, r := range rows {
				fmt.Fprintf(bw, "| `%s` | %s | %s |", r.ID, r.Level, mdCell(Cite(r.Source)))
				for _, i := range cols {
					fmt.Fprintf(bw, " %s |", symbols[r.Cells[i].State])
				}
				fmt.Fprintln(bw)
			}
		}
		fmt.Fprint(bw, "| **passed** | | |")
		for _, i := range cols {
			t := m.Columns[i].Totals
			fmt.Fprintf(bw, " %d/%d |", t.Passed, t.Passed+t.Failed+t.NotSupported+t.SetupFailed)
		}
		fmt.Fprintln(bw)

		for _, i := range cols {
			c := m.Columns[i]
			var lines []string
			for _, f := range c.SuiteFailures {
				lines = append(lines, fmt.Sprintf("- (suite) %s", mdText(Reason(f))))
			}
			for _, g := range m.Groups {
				for _, r := range g.Rows {
					cell := r.Cells[i]
					if cell.State == conformance.StateFailed || cell.State == conformance.StateSetupFailed {
						lines = append(lines, fmt.Sprintf("- %s `%s` (%s): %s", symbols[cell.State], r.ID, r.Level, mdText(cell.Reason)))
					}
				}
			}
			if len(lines) > 0 {
				fmt.Fprintf(bw, "\n**%s**, profile %s:\n\n%s\n", mdText(c.Subject), p, strings.Join(lines, "\n"))
			}
		}
	}
	return bw.Flush()
}

// rowsIn returns the rows of g that at least one of the columns ran.
func rowsIn(g Group, cols []int) []Row {
	var rows []Row
	for _, r := range g.Rows {
		for _, i := range cols {
			if r.Cells[i].State != "" {
				rows = append(rows, r)
				break
			}
		}
	}
	return rows
}

// citation is the reference a Source starts with: "RFC 9110 §7.6.1" or
// "seed §Headers", before its explanation.
var citation = regexp.MustCompile(`^(RFC \d+ §[\d.]+(?: item \d+)?|seed §[^:;,(]+)`)

// Cite shortens a spec's Source to its first citation, for a narrow column;
// a source in another form is kept whole up to its first colon.
func Cite(source string) string {
	if m := citation.FindString(source); m != "" {
		return strings.TrimSpace(m)
	}
	s, _, _ := strings.Cut(source, ":")
	return s
}

// mdCell escapes what would break a table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// mdText escapes what Markdown would read as markup in a reason, which
// quotes headers and values verbatim.
func mdText(s string) string {
	return strings.NewReplacer("\\", `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "<", "&lt;", "|", `\|`, "[", `\[`).Replace(s)
}
