package conformance

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// progressLine is printed as each spec finishes.
func progressLine(w io.Writer, r Result) {
	fmt.Fprintf(w, "%-13s %-6s %s (%dms)\n", r.State, r.Level, r.ID, r.DurationMS)
	if r.State != StatePassed && r.State != StateSkipped {
		for _, line := range strings.Split(strings.TrimSpace(r.Failure), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
}

// summary prints a table of outcomes by feature, then the verdict.
func summary(w io.Writer, r Report) {
	byFeature := map[string]*Totals{}
	for _, s := range r.Specs {
		t := byFeature[s.Feature]
		if t == nil {
			t = &Totals{}
			byFeature[s.Feature] = t
		}
		t.add(s.State)
	}
	names := make([]string, 0, len(byFeature))
	for n := range byFeature {
		names = append(names, n)
	}
	sort.Strings(names)

	fmt.Fprintf(w, "\n%s, profile %s, %s backends\n", r.Subject, r.Profile, r.Backends)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "feature\tpassed\tfailed\tnot supported\tsetup failed\tskipped\t")
	row := func(name string, t Totals) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t\n", name, t.Passed, t.Failed, t.NotSupported, t.SetupFailed, t.Skipped)
	}
	for _, n := range names {
		row(n, *byFeature[n])
	}
	row("total", r.Totals)
	tw.Flush()
	for _, f := range r.SuiteFailures {
		fmt.Fprintf(w, "suite failure: %s\n", firstLine(f))
	}
	switch r.ExitCode() {
	case ExitPassed:
		fmt.Fprintln(w, "verdict: PASS (every MUST spec that ran passed)")
	case ExitFailed:
		fmt.Fprintln(w, "verdict: FAIL (a MUST spec failed)")
	default:
		fmt.Fprintln(w, "verdict: SETUP ERROR (something could not be set up; see above)")
	}
}
