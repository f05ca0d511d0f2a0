package conformance

// Level is a requirement level in the sense of RFC 2119.
type Level string

// Requirement levels.
const (
	MUST   Level = "MUST"
	SHOULD Level = "SHOULD"
	MAY    Level = "MAY"
)

// Profile is a set of specs with their expectations.
type Profile string

const (
	// ProfileSeed is everything the seed document promises, as the reference
	// proxy implements it: Via "1.1 rws", Connection: close upstream, 502 and
	// only 502, exact round-robin.
	ProfileSeed Profile = "seed"
	// ProfileRFC9110 is what any HTTP/1.1 reverse proxy must do whatever its
	// product choices; real proxies are measured against it.
	ProfileRFC9110 Profile = "rfc9110"
)

// Meta describes one spec. ID is stable across releases: reports, expected
// verdict files and label filters refer to it.
type Meta struct {
	ID       string    `json:"id"`      // e.g. "hop-by-hop/response/connection-listed"
	Title    string    `json:"title"`   // one line, what the proxy must do
	Level    Level     `json:"level"`   // MUST, SHOULD, MAY
	Source   string    `json:"source"`  // "RFC 9110 §7.6.1: ..." or "seed §Headers"
	Feature  string    `json:"feature"` // group in reports: "hop-by-hop", "failover", ...
	Needs    []Feature `json:"needs,omitempty"`
	Profiles []Profile `json:"profiles"` // profiles the spec belongs to
	Labels   []string  `json:"labels,omitempty"`
}
