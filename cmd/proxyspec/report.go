package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/proxyspec/proxyspec/conformance"
	"github.com/proxyspec/proxyspec/matrix"
)

func init() {
	register(command{name: "report", summary: "lay JSON reports side by side (Markdown, HTML) and check them against expected verdicts", run: reportCmd})
}

func reportCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	markdown := fs.String("markdown", "", "write the matrix as Markdown to `file`")
	html := fs.String("html", "", "write the matrix as a self-contained HTML page to `file`")
	title := fs.String("title", "proxyspec: conformance matrix", "`title` of the HTML page")
	expected := fs.String("expected", "", "`dir` of expected verdicts, one SUBJECT.json per implementation")
	check := fs.Bool("check", false, "compare every report with its expected verdicts; exit 1 on any difference")
	update := fs.Bool("update", false, "rewrite the expected verdicts of the reports' subjects and profiles from the reports")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: proxyspec report [flags] REPORT.json...

Lays the JSON reports of several runs (proxyspec run --report-json) side by
side: one row per spec, grouped by feature, one column per implementation
and profile. Prints a summary, and writes the matrix with --markdown and
--html.

With --expected DIR --check, compares each report with DIR/SUBJECT.json and
lists every spec whose state differs, in either direction: a spec that newly
fails and one that newly passes both need a look. With --update, writes
those files from the reports instead (only the profiles the reports ran).

Exit status: 0 done (no difference), 1 a difference with --check, 2 usage
or file errors.

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
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "proxyspec report: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() == 0:
		fs.Usage()
		return 2
	case *check && *update:
		return fail("--check and --update are exclusive")
	case (*check || *update) && *expected == "":
		return fail("--check and --update need --expected DIR")
	case *expected != "" && !*check && !*update:
		return fail("--expected needs --check or --update")
	}

	var reports []conformance.Report
	for _, path := range fs.Args() {
		r, err := conformance.ReadReport(path)
		if err != nil {
			return fail("%v", err)
		}
		if r.Subject == "" || r.Profile == "" {
			return fail("%s: not a proxyspec run report (no subject or profile)", path)
		}
		reports = append(reports, r)
	}
	m, err := matrix.Build(reports...)
	if err != nil {
		return fail("%v", err)
	}
	printSummary(stdout, m)
	if *markdown != "" {
		if err := writeWith(*markdown, m.Markdown); err != nil {
			return fail("%v", err)
		}
	}
	if *html != "" {
		if err := writeWith(*html, func(w io.Writer) error { return m.HTML(w, *title) }); err != nil {
			return fail("%v", err)
		}
	}
	switch {
	case *update:
		if err := updateExpected(stdout, *expected, reports); err != nil {
			return fail("%v", err)
		}
	case *check:
		return checkExpected(stdout, stderr, *expected, reports)
	}
	return 0
}

// printSummary prints a line of totals per column.
func printSummary(w io.Writer, m matrix.Matrix) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "implementation\tprofile\tpassed\tfailed\tnot supported\tsetup failed\tskipped")
	for _, c := range m.Columns {
		t := c.Totals
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", c.Subject, c.Profile, t.Passed, t.Failed, t.NotSupported, t.SetupFailed, t.Skipped)
	}
	tw.Flush()
}

// writeWith renders into path, leaving no half-written file on error.
func writeWith(path string, render func(io.Writer) error) error {
	var b bytes.Buffer
	if err := render(&b); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// bySubject groups reports by subject, in their order.
func bySubject(reports []conformance.Report) ([]string, map[string][]conformance.Report) {
	var names []string
	groups := map[string][]conformance.Report{}
	for _, r := range reports {
		if _, ok := groups[r.Subject]; !ok {
			names = append(names, r.Subject)
		}
		groups[r.Subject] = append(groups[r.Subject], r)
	}
	return names, groups
}

func updateExpected(stdout io.Writer, dir string, reports []conformance.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("expected verdicts: %w", err)
	}
	names, groups := bySubject(reports)
	for _, name := range names {
		e, err := matrix.ReadExpected(dir, name)
		if err != nil {
			return err
		}
		changes := 0
		for _, r := range groups[name] {
			changes += len(matrix.Compare(e, r))
			e.Set(r)
		}
		if err := e.WriteFile(dir); err != nil {
			return err
		}
		path, _ := matrix.ExpectedPath(dir, name)
		fmt.Fprintf(stdout, "updated %s: %d change(s)\n", path, changes)
	}
	return nil
}

func checkExpected(stdout, stderr io.Writer, dir string, reports []conformance.Report) int {
	names, groups := bySubject(reports)
	total := 0
	for _, name := range names {
		e, err := matrix.ReadExpected(dir, name)
		if err != nil {
			fmt.Fprintf(stderr, "proxyspec report: %v\n", err)
			return 2
		}
		path, _ := matrix.ExpectedPath(dir, name)
		for _, r := range groups[name] {
			if _, ok := e.Profiles[r.Profile]; !ok {
				fmt.Fprintf(stdout, "%s (%s): no expected verdicts in %s\n", name, r.Profile, path)
			}
			ds := matrix.Compare(e, r)
			for _, d := range ds {
				fmt.Fprintf(stdout, "DIFF %s\n", d)
			}
			total += len(ds)
		}
	}
	if total > 0 {
		fmt.Fprintf(stdout, "\n%d difference(s) from the expected verdicts in %s.\n"+
			"A spec that newly fails is a regression (or a flaky spec: report it, never retry it green);\n"+
			"one that newly passes, or a new spec, needs the expected file updated:\n"+
			"  ci/gate.sh --update PEER   (then review and commit the diff of %s)\n", total, dir, dir)
		return 1
	}
	fmt.Fprintf(stdout, "\nno difference from the expected verdicts in %s (%d run(s)).\n", dir, len(reports))
	return 0
}
