package matrix

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
)

// report builds a report of subject for profile from "id=state" pairs; the
// feature is the ID's first segment.
func report(subject string, p conformance.Profile, specs ...string) conformance.Report {
	r := conformance.Report{Subject: subject, Profile: p}
	for _, s := range specs {
		id, state, _ := strings.Cut(s, "=")
		feature, _, _ := strings.Cut(id, "/")
		res := conformance.Result{Meta: conformance.Meta{ID: id, Feature: feature, Level: conformance.MUST, Source: "RFC 9110 §7.6.1: x"}, State: conformance.State(state)}
		if res.State == conformance.StateFailed {
			res.Failure = "why " + id
		}
		r.Specs = append(r.Specs, res)
	}
	return r
}

func TestBuildOrdersColumnsAndGroupsRows(t *testing.T) {
	m, err := Build(
		report("nginx", conformance.ProfileRFC9110, "a/1=passed"),
		report("nginx", conformance.ProfileSeed, "a/1=failed", "b/1=passed", "a/2=passed"),
		report("caddy", conformance.ProfileSeed, "a/1=passed", "c/1=not-supported"),
	)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range m.Columns {
		cols = append(cols, c.Name())
	}
	if got, want := strings.Join(cols, ", "), "nginx (seed), caddy (seed), nginx (rfc9110)"; got != want {
		t.Errorf("columns = %s, want %s", got, want)
	}
	var layout []string
	for _, g := range m.Groups {
		for _, r := range g.Rows {
			var cells []string
			for _, c := range r.Cells {
				cells = append(cells, string(c.State))
			}
			layout = append(layout, g.Feature+":"+r.ID+"="+strings.Join(cells, ","))
		}
	}
	want := []string{
		"a:a/1=failed,passed,passed",
		"a:a/2=passed,,",
		"b:b/1=passed,,",
		"c:c/1=,not-supported,",
	}
	if strings.Join(layout, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(layout, "\n"), strings.Join(want, "\n"))
	}
	a1 := m.Groups[0].Rows[0]
	if a1.Cells[0].Reason != "why a/1" || a1.Cells[1].Reason != "" {
		t.Errorf("reasons of a/1 = %q, %q: want the failure's, and none for a pass", a1.Cells[0].Reason, a1.Cells[1].Reason)
	}
	if a1.Agree() || !m.Groups[0].Rows[1].Agree() {
		t.Error("Agree: a/1 (failed vs passed) must disagree, a/2 (one run) must agree")
	}
}

func TestBuildRejectsTwoReportsOfOneRun(t *testing.T) {
	_, err := Build(report("nginx", conformance.ProfileSeed), report("caddy", conformance.ProfileSeed), report("nginx", conformance.ProfileSeed))
	if err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("err = %v, want one naming nginx", err)
	}
}

func TestMarkdown(t *testing.T) {
	m, err := Build(
		report("nginx", conformance.ProfileSeed, "a/1=failed", "a/2=passed"),
		report("caddy", conformance.ProfileSeed, "a/1=passed", "a/2=setup-failed"),
		report("caddy", conformance.ProfileRFC9110, "a/1=not-supported"),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.Columns[0].Totals = conformance.Totals{Passed: 1, Failed: 1}
	var b bytes.Buffer
	if err := m.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"#### Profile seed\n\n| spec | level | source | nginx | caddy |\n|---|---|---|:-:|:-:|\n",
		"| **a** | | | | |\n",
		"| `a/1` | MUST | RFC 9110 §7.6.1 | ❌ | ✅ |\n",
		"| `a/2` | MUST | RFC 9110 §7.6.1 | ✅ | ⚠️ |\n",
		"| **passed** | | | 1/2 | 0/0 |\n",
		"**nginx**, profile seed:\n\n- ❌ `a/1` (MUST): why a/1\n",
		"**caddy**, profile seed:\n\n- ⚠️ `a/2` (MUST): \n",
		"#### Profile rfc9110\n\n| spec | level | source | caddy |\n",
		"| `a/1` | MUST | RFC 9110 §7.6.1 | ➖ |\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q; got:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| `a/2` | MUST | RFC 9110 §7.6.1 | ➖") {
		t.Error("a row no column of the profile ran is listed")
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	r := report("nginx", conformance.ProfileSeed, "a/1=failed", "a/2=passed")
	r.Specs[0].Failure = `header <script>alert(1)</script> reached the client`
	m, err := Build(r, report("caddy", conformance.ProfileSeed, "a/1=passed"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.HTML(&b, "the <title>"); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if strings.Contains(page, "<script>alert") {
		t.Error("a failure message is not escaped")
	}
	if regexp.MustCompile(`(?i)<link|src=|url\(|@import|https?://`).MatchString(page) {
		t.Error("the page refers to an external asset")
	}
	for _, want := range []string{
		"<title>the &lt;title&gt;</title>",
		`<td class="c failed pf" data-s="1" title="header &lt;script&gt;alert(1)&lt;/script&gt; reached the client"><a href="#f0-a-1">FAIL</a></td>`,
		`<td class="c passed" data-s="4">pass</td>`,
		`<td class="c none" data-s="5"></td>`,
		`<li id="f0-a-1">`,
		`<th colspan="2" class="pf-h">profile seed</th>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestCite(t *testing.T) {
	for in, want := range map[string]string{
		"seed §502 Bad Gateway: no backends configured":                  "seed §502 Bad Gateway",
		"RFC 9112 §6.3 item 5: a proxy that receives":                    "RFC 9112 §6.3 item 5",
		"RFC 9110 §7.6.1; §5.3: several field lines":                     "RFC 9110 §7.6.1",
		"seed §Headers lists TE; RFC 9110 §10.1.4: TE applies":           "seed §Headers lists TE",
		"seed §Timeouts (response read timeout) and §Automatic failover": "seed §Timeouts",
		"RFC 3986 §5.2.4, §6.2.2.3: dot segments are removed":            "RFC 3986 §5.2.4",
		"a house rule: no header twice":                                  "a house rule",
	} {
		if got := Cite(in); got != want {
			t.Errorf("Cite(%q) = %q, want %q", in, got, want)
		}
	}
}
