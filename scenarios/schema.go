package scenarios

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/proxyspec/proxyspec/fakebackend"
)

// The types in this file are the YAML schema, decoded strictly: a key that is
// not a field here is an error. README.md documents them for users; keep the
// two in step.

type document struct {
	ID          string      `yaml:"id"`
	Title       string      `yaml:"title"`
	Level       string      `yaml:"level"`
	Source      string      `yaml:"source"`
	Feature     string      `yaml:"feature"`
	Profiles    []string    `yaml:"profiles"`
	Needs       []string    `yaml:"needs"`
	Labels      []string    `yaml:"labels"`
	Description string      `yaml:"description"`
	Topology    topologyDoc `yaml:"topology"`
	Steps       []stepDoc   `yaml:"steps"`
	Final       *finalDoc   `yaml:"final"`
}

type topologyDoc struct {
	Backends       []backendDoc         `yaml:"backends"`
	PathPrefix     string               `yaml:"path_prefix"`
	ConnectTimeout fakebackend.Duration `yaml:"connect_timeout"`
	ReadTimeout    fakebackend.Duration `yaml:"read_timeout"`
}

type backendDoc struct {
	Name    string                  `yaml:"name"`
	Mode    fakebackend.Mode        `yaml:"mode"`
	Default *fakebackend.Behaviour  `yaml:"default"`
	Queue   []fakebackend.Behaviour `yaml:"queue"`
}

// stepDoc is one step: exactly one of Request, SetMode, Enqueue, SetDefault.
type stepDoc struct {
	Name       string               `yaml:"name"`
	Request    *requestDoc          `yaml:"request"`
	Expect     *expectDoc           `yaml:"expect"`
	Timeout    fakebackend.Duration `yaml:"timeout"`
	SetMode    *setModeDoc          `yaml:"set_mode"`
	Enqueue    *enqueueDoc          `yaml:"enqueue"`
	SetDefault *setDefaultDoc       `yaml:"set_default"`
}

type requestDoc struct {
	Method  string              `yaml:"method"`
	Target  string              `yaml:"target"`
	Headers []fakebackend.Field `yaml:"headers"`
	Body    *string             `yaml:"body"`
	Raw     *string             `yaml:"raw"`
}

type setModeDoc struct {
	Backend string           `yaml:"backend"`
	Mode    fakebackend.Mode `yaml:"mode"`
}

type enqueueDoc struct {
	Backend    string                  `yaml:"backend"`
	Behaviours []fakebackend.Behaviour `yaml:"behaviours"`
}

type setDefaultDoc struct {
	Backend   string                `yaml:"backend"`
	Behaviour fakebackend.Behaviour `yaml:"behaviour"`
}

// expectDoc is what must hold after one request. Every field set must hold.
type expectDoc struct {
	Status     *statusPattern       `yaml:"status"`
	StatusIn   []statusPattern      `yaml:"status_in"`
	Aborted    *bool                `yaml:"aborted"`
	Backend    string               `yaml:"backend"`
	Forwarded  *bool                `yaml:"forwarded"`
	Deliveries *int                 `yaml:"deliveries"`
	Received   map[string]int       `yaml:"received"`
	Response   *messageDoc          `yaml:"response"`
	Upstream   *messageDoc          `yaml:"upstream"`
	AnyOf      []expectDoc          `yaml:"any_of"`
	ByProfile  map[string]expectDoc `yaml:"by_profile"`
}

// messageDoc is what a message must look like: the response the client got,
// or each request a backend received.
type messageDoc struct {
	Method       string            `yaml:"method"` // upstream only
	Target       string            `yaml:"target"` // upstream only
	Present      []string          `yaml:"present"`
	Absent       []string          `yaml:"absent"`
	Equal        map[string]string `yaml:"equal"`
	Contains     map[string]string `yaml:"contains"`
	NotContains  map[string]string `yaml:"not_contains"`
	Body         *string           `yaml:"body"`
	BodyContains string            `yaml:"body_contains"`
}

type finalDoc struct {
	Received        map[string]int `yaml:"received"`
	ReceivedAtLeast map[string]int `yaml:"received_at_least"`
	Total           *int           `yaml:"total"`
}

// statusPattern is a status code (502) or a class of them ("5xx").
type statusPattern struct {
	code  int // exact code, or 0
	class int // 1 to 5 for "1xx" to "5xx", or 0
}

// UnmarshalYAML reads the pattern from its node, so that a bad one is
// reported at its own line (go-yaml drops positions of errors returned by
// text unmarshalers).
func (p *statusPattern) UnmarshalYAML(n ast.Node) error {
	s := strings.TrimSpace(n.String())
	if len(s) == 3 && strings.HasSuffix(strings.ToLower(s), "xx") && s[0] >= '1' && s[0] <= '5' {
		p.class = int(s[0] - '0')
		return nil
	}
	code, err := strconv.Atoi(s)
	if err != nil || code < 100 || code > 599 {
		return &nodeError{node: n, reason: fmt.Sprintf("bad status %q: want a code from 100 to 599 or a class such as \"5xx\"", s)}
	}
	p.code = code
	return nil
}

func (p statusPattern) match(code int) bool {
	if p.class != 0 {
		return code/100 == p.class
	}
	return code == p.code
}

func (p statusPattern) String() string {
	if p.class != 0 {
		return fmt.Sprintf("%dxx", p.class)
	}
	return strconv.Itoa(p.code)
}

// nodeError is a problem found while decoding one node.
type nodeError struct {
	node   ast.Node
	reason string
}

func (e *nodeError) Error() string { return e.reason }
