package matrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/proxyspec/proxyspec/conformance"
)

// Expected is the verdict file of one implementation: the state every spec
// is expected to end in, per profile. A CI gate fails on any difference, in
// either direction: a spec that newly fails is a regression, one that newly
// passes means the file (and the README's matrix) no longer tells the truth.
type Expected struct {
	Subject  string                                               `json:"subject"`
	Profiles map[conformance.Profile]map[string]conformance.State `json:"profiles"`
}

// Unstable is an expected state written by hand, never by a run: the
// implementation was seen both passing and failing the spec with nothing
// changed (a peer's own nondeterminism, such as Varnish answering an 8 MiB
// body with Content-Length: 0 once in a while). Passed and failed both
// match it; any other state, or the spec's absence, is still a difference.
// --update keeps it, so a human decision is not erased by the next run.
const Unstable conformance.State = "unstable"

// matches reports whether a run's state meets an expectation.
func matches(want, got conformance.State) bool {
	if want == Unstable {
		return got == conformance.StatePassed || got == conformance.StateFailed
	}
	return want == got
}

// subjectName is what a subject's name may be to name a file.
var subjectName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ExpectedPath is the verdict file of subject in dir: dir/SUBJECT.json.
func ExpectedPath(dir, subject string) (string, error) {
	if !subjectName.MatchString(subject) {
		return "", fmt.Errorf("subject name %q cannot name an expected file (want letters, digits, '.', '_', '-')", subject)
	}
	return filepath.Join(dir, subject+".json"), nil
}

// ReadExpected reads subject's verdict file from dir. A missing file is an
// empty Expected, not an error: every spec is then new.
func ReadExpected(dir, subject string) (Expected, error) {
	e := Expected{Subject: subject, Profiles: map[conformance.Profile]map[string]conformance.State{}}
	path, err := ExpectedPath(dir, subject)
	if err != nil {
		return e, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("reading expected verdicts: %w", err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("expected verdicts %s: %w", path, err)
	}
	if e.Subject != subject {
		return e, fmt.Errorf("expected verdicts %s are for subject %q, not %q", path, e.Subject, subject)
	}
	if e.Profiles == nil {
		e.Profiles = map[conformance.Profile]map[string]conformance.State{}
	}
	return e, nil
}

// WriteFile writes e to its file in dir, as indented JSON with sorted keys,
// so that a change of verdict is a one-line diff in review.
func (e Expected) WriteFile(dir string) error {
	path, err := ExpectedPath(dir, e.Subject)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding expected verdicts: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing expected verdicts: %w", err)
	}
	return nil
}

// Set replaces the verdicts of r's profile by r's states; other profiles are
// kept, so a run of one profile updates only that one.
func (e *Expected) Set(r conformance.Report) {
	old := e.Profiles[r.Profile]
	states := make(map[string]conformance.State, len(r.Specs))
	for _, s := range r.Specs {
		states[s.ID] = s.State
		if old[s.ID] == Unstable && matches(Unstable, s.State) {
			states[s.ID] = Unstable
		}
	}
	if e.Profiles == nil {
		e.Profiles = map[conformance.Profile]map[string]conformance.State{}
	}
	e.Profiles[r.Profile] = states
}

// Diff is one spec whose state differs from its expectation. Want is empty
// for a spec the file does not know; Got is empty for one the run lacked.
type Diff struct {
	Subject string
	Profile conformance.Profile
	ID      string
	Want    conformance.State
	Got     conformance.State
	Reason  string // the run's one-line failure, if any
}

// suiteID stands for the run as a whole in a Diff about a failure outside
// any spec.
const suiteID = "(suite)"

func (d Diff) String() string {
	var what string
	switch {
	case d.ID == suiteID:
		what = "failure outside the specs"
	case d.Want == "":
		what = fmt.Sprintf("new spec, no expectation; got %s", d.Got)
	case d.Got == "":
		what = fmt.Sprintf("expected %s; not in this run (renamed, removed or filtered out?)", d.Want)
	case d.Want != conformance.StatePassed && d.Got == conformance.StatePassed:
		what = fmt.Sprintf("expected %s, now PASSES", d.Want)
	default:
		what = fmt.Sprintf("expected %s, got %s", d.Want, strings.ToUpper(string(d.Got)))
	}
	s := fmt.Sprintf("%s (%s) %s: %s", d.Subject, d.Profile, d.ID, what)
	if d.Reason != "" {
		s += " — " + d.Reason
	}
	return s
}

// Compare lists how r differs from e, in the run's spec order, then the
// expected specs the run lacked in ID order. A run that failed outside its
// specs (an interrupted suite) is a difference too.
func Compare(e Expected, r conformance.Report) []Diff {
	want := e.Profiles[r.Profile]
	var ds []Diff
	for _, f := range r.SuiteFailures {
		ds = append(ds, Diff{Subject: r.Subject, Profile: r.Profile, ID: suiteID, Got: conformance.StateFailed, Reason: Reason(f)})
	}
	seen := map[string]bool{}
	for _, s := range r.Specs {
		seen[s.ID] = true
		if w := want[s.ID]; !matches(w, s.State) {
			ds = append(ds, Diff{Subject: r.Subject, Profile: r.Profile, ID: s.ID, Want: w, Got: s.State, Reason: Reason(s.Failure)})
		}
	}
	var gone []string
	for id := range want {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	for _, id := range gone {
		ds = append(ds, Diff{Subject: r.Subject, Profile: r.Profile, ID: id, Want: want[id]})
	}
	return ds
}
