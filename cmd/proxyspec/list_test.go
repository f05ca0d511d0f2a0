package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/proxyspec/proxyspec/conformance"
)

func listOutput(t *testing.T, args ...string) string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := listCmd(context.Background(), args, &out, &errs); code != 0 {
		t.Fatalf("list %v: exit %d: %s", args, code, errs.String())
	}
	return out.String()
}

func TestListFormats(t *testing.T) {
	all := conformance.Catalog()
	text := listOutput(t)
	md := listOutput(t, "--markdown")
	for _, m := range all {
		if !strings.Contains(text, m.ID+" ") || !strings.Contains(text, m.Source) {
			t.Errorf("text listing lacks %s or its source", m.ID)
		}
		if !strings.Contains(md, "| `"+m.ID+"` | "+string(m.Level)+" | ") {
			t.Errorf("markdown listing lacks the row of %s", m.ID)
		}
	}
	if got := strings.Count(md, "\n"); got != len(all)+2 {
		t.Errorf("markdown has %d lines, want %d", got, len(all)+2)
	}

	var metas []conformance.Meta
	if err := json.Unmarshal([]byte(listOutput(t, "--json")), &metas); err != nil {
		t.Fatal(err)
	}
	if len(metas) != len(all) {
		t.Errorf("json lists %d specs, want %d", len(metas), len(all))
	}
}

func TestListProfileFilter(t *testing.T) {
	var metas []conformance.Meta
	if err := json.Unmarshal([]byte(listOutput(t, "--json", "--profile", "rfc9110")), &metas); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, m := range conformance.Catalog() {
		if m.In(conformance.ProfileRFC9110) {
			want++
		}
	}
	if len(metas) != want || want == 0 {
		t.Errorf("profile rfc9110 lists %d specs, want %d", len(metas), want)
	}
	for _, m := range metas {
		if !m.In(conformance.ProfileRFC9110) {
			t.Errorf("%s is not in profile rfc9110", m.ID)
		}
	}
}

func TestListUsage(t *testing.T) {
	for _, args := range [][]string{{"--profile", "nginx"}, {"--json", "--markdown"}, {"extra"}, {"--nope"}} {
		var out, errs bytes.Buffer
		if code := listCmd(context.Background(), args, &out, &errs); code != 2 {
			t.Errorf("list %v: exit %d, want 2", args, code)
		}
	}
}
