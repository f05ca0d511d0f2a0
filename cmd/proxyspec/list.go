package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/proxyspec/proxyspec/conformance"
)

func init() {
	register(command{name: "list", summary: "list the specs (id, level, feature, profiles, source, title)", run: listCmd})
}

func listCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	asMarkdown := fs.Bool("markdown", false, "print a Markdown table")
	profile := fs.String("profile", "", "only the specs of this `profile` (seed or rfc9110)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || (*asJSON && *asMarkdown) {
		fmt.Fprintln(stderr, "usage: proxyspec list [--json | --markdown] [--profile seed|rfc9110]")
		return 2
	}
	p := conformance.Profile(*profile)
	if p != "" && p != conformance.ProfileSeed && p != conformance.ProfileRFC9110 {
		fmt.Fprintf(stderr, "proxyspec list: unknown profile %q\n", p)
		return 2
	}
	metas := []conformance.Meta{}
	for _, m := range conformance.Catalog() {
		if p == "" || m.In(p) {
			metas = append(metas, m)
		}
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(metas); err != nil {
			fmt.Fprintf(stderr, "proxyspec list: %v\n", err)
			return 2
		}
	case *asMarkdown:
		fmt.Fprintln(stdout, "| ID | Level | Feature | Profiles | Source | Title |")
		fmt.Fprintln(stdout, "|---|---|---|---|---|---|")
		for _, m := range metas {
			fmt.Fprintf(stdout, "| `%s` | %s | %s | %s | %s | %s |\n",
				m.ID, m.Level, mdCell(m.Feature), profiles(m), mdCell(m.Source), mdCell(m.Title))
		}
	default:
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tLEVEL\tFEATURE\tPROFILES\tSOURCE\tTITLE")
		for _, m := range metas {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Level, m.Feature, profiles(m), m.Source, m.Title)
		}
		tw.Flush()
	}
	return 0
}

func profiles(m conformance.Meta) string {
	ps := make([]string, len(m.Profiles))
	for i, p := range m.Profiles {
		ps[i] = string(p)
	}
	return strings.Join(ps, ",")
}

// mdCell escapes what would break a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
