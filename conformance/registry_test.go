package conformance

import (
	"strings"
	"testing"
)

func TestCatalog(t *testing.T) {
	ms := Catalog()
	if len(ms) == 0 {
		t.Fatal("the catalog is empty")
	}
	if err := checkCatalog(ms); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if !strings.HasPrefix(m.ID, m.Feature+"/") && !strings.HasPrefix(m.ID, "scenario/") {
			t.Errorf("spec %q: id does not start with its feature %q", m.ID, m.Feature)
		}
	}
}

func TestCheckCatalogRejects(t *testing.T) {
	good := Meta{ID: "x/y", Title: "t", Level: MUST, Source: "s", Feature: "x", Profiles: []Profile{ProfileSeed}}
	cases := map[string]struct {
		ms   []Meta
		want string
	}{
		"duplicate id":  {[]Meta{good, good}, `"x/y" declared twice`},
		"no level":      {[]Meta{good.merge(Meta{Level: "OUGHT"})}, `level (got "OUGHT")`},
		"no source":     {[]Meta{{ID: "x/y", Title: "t", Level: MUST, Feature: "x", Profiles: []Profile{ProfileSeed}}}, "source"},
		"no profiles":   {[]Meta{{ID: "x/y", Title: "t", Level: MUST, Source: "s", Feature: "x"}}, "profiles"},
		"bad profile":   {[]Meta{good.merge(Meta{Profiles: []Profile{"nginx"}})}, `known profile (got "nginx")`},
		"space in id":   {[]Meta{good.merge(Meta{ID: "x/a b"})}, "without whitespace"},
		"missing title": {[]Meta{{ID: "x/y", Level: MUST, Source: "s", Feature: "x", Profiles: []Profile{ProfileSeed}}}, "title"},
	}
	for name, c := range cases {
		err := checkCatalog(c.ms)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
	if err := checkCatalog([]Meta{good}); err != nil {
		t.Errorf("a complete meta was rejected: %v", err)
	}
}

func TestGinkgoLabels(t *testing.T) {
	m := Meta{Feature: "hop-by-hop", Level: SHOULD, Profiles: []Profile{ProfileSeed, ProfileRFC9110}, Labels: []string{"a/b", "x:y", "seed"}}
	got := strings.Join(m.GinkgoLabels(), " ")
	if want := "hop-by-hop SHOULD seed rfc9110 a-b x-y"; got != want {
		t.Errorf("labels %q, want %q", got, want)
	}
}

func TestTableMergesBase(t *testing.T) {
	var got []Meta
	s := &Suite{feature: "f", declare: func(m Meta, _ codeLocation, _ func(*Env)) { got = append(got, m) }}
	Table(s, Meta{Level: SHOULD, Source: "src", Profiles: []Profile{ProfileSeed}}, func(*Env, int) {},
		Entry(Meta{ID: "f/one", Title: "one"}, 1),
		Entry(Meta{ID: "f/two", Title: "two", Level: MUST}, 2),
	)
	if len(got) != 2 || got[0].Level != SHOULD || got[1].Level != MUST || got[1].Source != "src" || got[0].Feature != "f" {
		t.Errorf("merged metas: %+v", got)
	}
}
