package matrix

import (
	"fmt"
	"regexp"
	"strings"
)

// reasonLimit bounds a reason, in runes: a matrix cell is no place for a dump.
const reasonLimit = 160

// gomega matches Gomega's failure format: a description line, then
// "Expected", the actual value, the matcher's words and the expected value.
var gomega = regexp.MustCompile(`(?s)^(?:(.*?)\n)?Expected\n\s+<[^>]*>: (.*?)\n(\S[^\n]*?)(?:\n\s+<[^>]*>: (.*))?$`)

// Reason turns a failure message into one line: "what: got X, want to equal
// Y" for Gomega's format, the first problem for a scenario's list, the first
// line otherwise.
func Reason(failure string) string {
	failure = strings.TrimSpace(failure)
	if failure == "" {
		return ""
	}
	if m := gomega.FindStringSubmatch(failure); m != nil {
		line := fmt.Sprintf("got %s, expected %s", oneLine(m[2]), m[3])
		if m[4] != "" {
			line += " " + oneLine(m[4])
		}
		if m[1] != "" {
			line = oneLine(m[1]) + ": " + line
		}
		return clip(line)
	}
	lines := strings.Split(failure, "\n")
	// A scenario's failure is its name and location, then one line per
	// problem: the first problem says more than the heading.
	if len(lines) > 1 && strings.HasPrefix(lines[0], "scenario ") && strings.HasSuffix(lines[0], ":") {
		line := strings.TrimSpace(lines[1])
		if more := len(lines) - 2; more > 0 {
			line += fmt.Sprintf(" (+%d more)", more)
		}
		return clip(line)
	}
	return clip(lines[0])
}

// oneLine folds a multi-line value into one line of single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func clip(s string) string {
	r := []rune(s)
	if len(r) <= reasonLimit {
		return s
	}
	return string(r[:reasonLimit-1]) + "…"
}
