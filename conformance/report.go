package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// State is a spec's outcome in a Report.
type State string

// States.
const (
	StatePassed       State = "passed"
	StateFailed       State = "failed"
	StateNotSupported State = "not-supported" // the subject lacks a feature the spec needs
	StateSetupFailed  State = "setup-failed"  // the subject or a backend did not start
	StateSkipped      State = "skipped"       // filtered out or skipped by the spec
)

// Report is the JSON report of a run (--report-json), the one schema that
// `proxyspec report` and CI gates read.
type Report struct {
	Subject     string    `json:"subject"`
	Profile     Profile   `json:"profile"`
	Backends    string    `json:"backends"`
	LabelFilter string    `json:"label_filter,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Totals      Totals    `json:"totals"`
	// SuiteFailures are failures outside any spec (e.g. an interrupted run).
	SuiteFailures []string `json:"suite_failures,omitempty"`
	Specs         []Result `json:"specs"`
}

// Totals counts specs by state.
type Totals struct {
	Passed       int `json:"passed"`
	Failed       int `json:"failed"`
	NotSupported int `json:"not_supported"`
	SetupFailed  int `json:"setup_failed"`
	Skipped      int `json:"skipped"`
}

func (t *Totals) add(s State) {
	switch s {
	case StatePassed:
		t.Passed++
	case StateFailed:
		t.Failed++
	case StateNotSupported:
		t.NotSupported++
	case StateSetupFailed:
		t.SetupFailed++
	default:
		t.Skipped++
	}
}

// Result is one spec's outcome.
type Result struct {
	Meta
	State      State     `json:"state"`
	DurationMS int64     `json:"duration_ms"`
	Failure    string    `json:"failure,omitempty"`
	Location   string    `json:"location,omitempty"`
	Evidence   *Evidence `json:"evidence,omitempty"` // kept for specs that did not pass
	// SubjectOutput is what a subject that did not start printed.
	SubjectOutput string `json:"subject_output,omitempty"`
}

// Exit statuses of a run.
const (
	ExitPassed = 0 // every MUST spec that ran passed
	ExitFailed = 1 // a MUST spec failed
	ExitSetup  = 2 // a setup failure, or a failure outside the specs
)

// ExitCode is the run's verdict: ExitSetup when anything could not be set
// up, ExitFailed when a MUST spec failed, ExitPassed otherwise (SHOULD and
// MAY failures are reported but do not fail a run).
func (r Report) ExitCode() int {
	if r.Totals.SetupFailed > 0 || len(r.SuiteFailures) > 0 {
		return ExitSetup
	}
	for _, s := range r.Specs {
		if s.State == StateFailed && s.Level == MUST {
			return ExitFailed
		}
	}
	return ExitPassed
}

// WriteFile writes r as indented JSON to path.
func (r Report) WriteFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// ReadReport reads a report written by WriteFile.
func ReadReport(path string) (Report, error) {
	var r Report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("reading report: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("report %s: %w", path, err)
	}
	return r, nil
}

// buildReport turns Ginkgo's report into ours. metas maps the text of each
// spec the kit declared to its Meta; other specs of the suite are left out.
func buildReport(c *Config, metas map[string]Meta, gr types.Report) Report {
	r := Report{
		Subject: c.Subject.Name(), Profile: c.Profile, Backends: c.Backends, LabelFilter: c.LabelFilter,
		Start: gr.StartTime, End: gr.EndTime,
		SuiteFailures: gr.SpecialSuiteFailureReasons,
	}
	for _, sr := range gr.SpecReports {
		if sr.LeafNodeType != types.NodeTypeIt {
			if sr.State.Is(types.SpecStateFailureStates) {
				r.SuiteFailures = append(r.SuiteFailures, fmt.Sprintf("%s: %s", sr.LeafNodeType, sr.Failure.Message))
			}
			continue
		}
		m, ok := metas[sr.LeafNodeText]
		if !ok {
			continue
		}
		res := result(m, sr)
		r.Totals.add(res.State)
		r.Specs = append(r.Specs, res)
	}
	return r
}

// result is one spec's outcome from its Ginkgo report.
func result(m Meta, sr types.SpecReport) Result {
	res := Result{Meta: m, DurationMS: sr.RunTime.Milliseconds()}
	marked, output := "", ""
	var ev *Evidence
	for _, e := range sr.ReportEntries {
		switch e.Name {
		case entryState:
			_ = entryValue(e, &marked)
		case entryOutput:
			_ = entryValue(e, &output)
		case entryEvidence:
			var v Evidence
			if entryValue(e, &v) == nil {
				ev = &v
			}
		}
	}
	switch {
	case sr.State == types.SpecStatePassed:
		res.State = StatePassed
	case sr.State.Is(types.SpecStateSkipped | types.SpecStatePending):
		res.State = StateSkipped
		if marked == string(StateNotSupported) {
			res.State = StateNotSupported
		}
	case marked == string(StateSetupFailed):
		res.State = StateSetupFailed
	default:
		res.State = StateFailed
	}
	if res.State != StatePassed {
		res.Failure = sr.Failure.Message
		if sr.Failure.Location.FileName != "" {
			res.Location = sr.Failure.Location.String()
		}
		res.Evidence = ev
		res.SubjectOutput = output
	}
	return res
}

// entryValue decodes a report entry into v: in process the raw value is at
// hand, across Ginkgo's parallel processes only its JSON is.
func entryValue(e types.ReportEntry, v any) error {
	raw := e.GetRawValue()
	if raw == nil && e.Value.AsJSON != "" {
		return json.Unmarshal([]byte(e.Value.AsJSON), v)
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// firstLine is the first line of a failure message, for progress lines.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
