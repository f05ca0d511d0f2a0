package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/proxyspec/proxyspec/fakebackend"
)

//go:embed builtin/*.yaml
var builtin embed.FS

// Builtin returns the scenarios shipped inside the binary.
func Builtin() ([]Scenario, error) { return LoadFS(builtin, "builtin") }

// LoadDir loads every *.yaml and *.yml file under dir, recursively. Problems
// name files by their path under dir joined to dir, so that an editor can
// open them.
func LoadDir(dir string) ([]Scenario, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("scenario folder %q: %w", dir, err)
	}
	return load(os.DirFS(dir), ".", func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) })
}

// LoadFS loads every *.yaml and *.yml file under root in fsys, recursively.
// Nothing is returned unless every file is valid: the error is Problems,
// listing each problem as file:line: reason.
func LoadFS(fsys fs.FS, root string) ([]Scenario, error) {
	return load(fsys, root, func(p string) string { return p })
}

// Merge joins scenario sets loaded separately (the built-ins and a user's
// folder) and rejects an id defined in more than one.
func Merge(sets ...[]Scenario) ([]Scenario, error) {
	var all []Scenario
	for _, s := range sets {
		all = append(all, s...)
	}
	if ps := duplicates(all); len(ps) > 0 {
		return nil, ps
	}
	return all, nil
}

func load(fsys fs.FS, root string, display func(string) string) ([]Scenario, error) {
	var (
		all   []Scenario
		probs Problems
		files int
	)
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return nil
		}
		files++
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ss, ps := Parse(display(p), data)
		all = append(all, ss...)
		probs = append(probs, ps...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading scenarios under %q: %w", display(root), err)
	}
	if files == 0 {
		return nil, Problems{{File: display(root), Reason: "no scenario files (*.yaml, *.yml)"}}
	}
	probs = append(probs, duplicates(all)...)
	if len(probs) > 0 {
		probs.sort()
		return nil, probs
	}
	return all, nil
}

func duplicates(all []Scenario) Problems {
	var ps Problems
	first := map[string]Scenario{}
	for _, s := range all {
		if f, ok := first[s.ID]; ok {
			ps = append(ps, Problem{s.File, s.Line, fmt.Sprintf("duplicate id %q (first defined at %s:%d)", s.ID, f.File, f.Line)})
			continue
		}
		first[s.ID] = s
	}
	return ps
}

// Parse reads the scenarios in one file's contents; name is the file name
// used in problems. A file holds one scenario, or several separated by
// "---". It returns the valid scenarios and every problem found; decoding
// stops at a file's first structural error (unknown key, wrong type), while
// semantic checks report every problem they find.
func Parse(name string, data []byte) ([]Scenario, Problems) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, Problems{yamlProblem(name, err)}
	}
	var (
		out   []Scenario
		probs Problems
	)
	for _, d := range f.Docs {
		if d.Body == nil {
			continue
		}
		s, ps := parseDoc(name, d.Body)
		if len(ps) > 0 {
			probs = append(probs, ps...)
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 && len(probs) == 0 {
		probs = append(probs, Problem{File: name, Reason: "no scenario in file"})
	}
	probs.sort()
	return out, probs
}

func parseDoc(name string, body ast.Node) (Scenario, Problems) {
	root := at{root: body}
	if _, ok := unwrap(body).(*ast.MappingNode); !ok {
		return Scenario{}, Problems{{name, lineOf(body), fmt.Sprintf("a scenario is a mapping (id: ..., title: ..., steps: ...), not %s", nodeKind(body))}}
	}
	if ps := checkDurations(name, body); len(ps) > 0 {
		return Scenario{}, ps
	}
	var doc document
	if err := yaml.NodeToValue(body, &doc, yaml.DisallowUnknownField()); err != nil {
		return Scenario{}, Problems{yamlProblem(name, err)}
	}
	c := &checker{file: name}
	c.document(&doc, root)
	if len(c.problems) > 0 {
		return Scenario{}, c.problems
	}
	return newScenario(name, root, doc), nil
}

// durationKeys are the keys whose values are durations, wherever they
// appear. They are checked on the tree before decoding because go-yaml loses
// the position of an error returned by a text unmarshaler.
var durationKeys = map[string]bool{
	"delay": true, "interval": true, "timeout": true,
	"connect_timeout": true, "read_timeout": true,
}

func checkDurations(name string, n ast.Node) Problems {
	var ps Problems
	// free is set inside mappings whose keys are the user's (header or
	// backend names), where a key "timeout" is not a duration.
	var walk func(n ast.Node, free bool)
	walk = func(n ast.Node, free bool) {
		switch v := n.(type) {
		case *ast.AnchorNode:
			walk(v.Value, free)
		case *ast.TagNode:
			walk(v.Value, free)
		case *ast.SequenceNode:
			for _, e := range v.Values {
				walk(e, false)
			}
		case *ast.MappingNode:
			for _, mv := range v.Values {
				walk(mv, free)
			}
		case *ast.MappingValueNode:
			if v.Key == nil {
				return
			}
			key := keyString(v.Key)
			if !free && durationKeys[key] {
				if reason := badDuration(v.Value); reason != "" {
					ps = append(ps, Problem{name, lineOf(v.Key), fmt.Sprintf("%s: %s", key, reason)})
				}
				return
			}
			walk(v.Value, !free && userKeyed[key])
		}
	}
	walk(n, false)
	return ps
}

// userKeyed are the keys whose values are mappings keyed by header or
// backend names, or profile names.
var userKeyed = map[string]bool{
	"equal": true, "contains": true, "not_contains": true,
	"received": true, "received_at_least": true, "by_profile": true,
}

func badDuration(n ast.Node) string {
	switch v := n.(type) {
	case *ast.StringNode:
		d, err := time.ParseDuration(v.Value)
		if err != nil {
			return fmt.Sprintf("bad duration %q: want a Go duration such as \"250ms\" or \"2s\"", v.Value)
		}
		if d < 0 {
			return fmt.Sprintf("bad duration %q: must not be negative", v.Value)
		}
		return ""
	case *ast.IntegerNode:
		if fmt.Sprint(v.Value) == "0" {
			return ""
		}
		return fmt.Sprintf("bad duration %s: a number needs a unit, such as \"%sms\"", v.GetToken().Value, v.GetToken().Value)
	case *ast.NullNode:
		return ""
	default:
		return fmt.Sprintf("bad duration: want a string such as \"250ms\", got %s", nodeKind(n))
	}
}

// yamlProblem turns a go-yaml error into a problem at its token's line,
// rewording type errors, whose Go-flavoured text names the wrong field.
func yamlProblem(name string, err error) Problem {
	var ne *nodeError
	if errors.As(err, &ne) {
		return Problem{name, lineOf(ne.node), ne.reason}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && te.Token != nil {
		reason := fmt.Sprintf("wrong type: want %s, got %s", typeKind(te.DstType), valueKind(te.SrcType, te.Token))
		if k := keyBefore(te.Token); k != "" {
			reason = fmt.Sprintf("%s: %s", k, reason)
		}
		return Problem{name, te.Token.Position.Line, reason}
	}
	var ue *yaml.UnexpectedNodeTypeError
	if errors.As(err, &ue) && ue.Token != nil {
		reason := fmt.Sprintf("wrong type: want %s, got %s", nodeTypeName(ue.Expected), nodeTypeName(ue.Actual))
		if k := keyBefore(ue.Token); k != "" {
			reason = fmt.Sprintf("%s: %s", k, reason)
		}
		return Problem{name, ue.Token.Position.Line, reason}
	}
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
		return Problem{name, ye.GetToken().Position.Line, ye.GetMessage()}
	}
	return Problem{File: name, Reason: err.Error()}
}

// keyBefore is the mapping key whose value starts at tok, if any.
func keyBefore(tok *token.Token) string {
	if tok.Prev != nil && tok.Prev.Type == token.MappingValueType && tok.Prev.Prev != nil {
		return tok.Prev.Prev.Value
	}
	return ""
}

func typeKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

func valueKind(t reflect.Type, tok *token.Token) string {
	k := typeKind(t)
	switch k {
	case "a list", "a mapping":
		return k
	}
	return fmt.Sprintf("%s %q", strings.TrimPrefix(strings.TrimPrefix(k, "an "), "a "), tok.Value)
}

func nodeTypeName(t ast.NodeType) string {
	switch t {
	case ast.SequenceType:
		return "a list"
	case ast.MappingType, ast.MappingValueType:
		return "a mapping"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.IntegerType:
		return "an integer"
	case ast.FloatType:
		return "a number"
	case ast.BoolType:
		return "true or false"
	case ast.NullType:
		return "null"
	}
	return strings.ToLower(t.String())
}

func nodeKind(n ast.Node) string {
	switch unwrap(n).(type) {
	case *ast.SequenceNode:
		return "a list"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.NullNode:
		return "null"
	}
	return fmt.Sprintf("the scalar %q", n.String())
}

// Defaults for timeouts a scenario does not set. The executor derives how
// long it waits for a response from the timeouts, so they are never unset.
const (
	DefaultConnectTimeout = time.Second
	DefaultReadTimeout    = 5 * time.Second
)

func newScenario(file string, root at, doc document) Scenario {
	if doc.Topology.ConnectTimeout == 0 {
		doc.Topology.ConnectTimeout = fakebackend.D(DefaultConnectTimeout)
	}
	if doc.Topology.ReadTimeout == 0 {
		doc.Topology.ReadTimeout = fakebackend.D(DefaultReadTimeout)
	}
	needs := append([]string(nil), doc.Needs...)
	if doc.Topology.PathPrefix != "" {
		needs = addOnce(needs, "path-prefix")
	}
	if len(doc.Topology.Backends) > 1 {
		needs = addOnce(needs, "multi-backend")
	}
	stepLines := make([]int, len(doc.Steps))
	for i := range doc.Steps {
		stepLines[i] = root.key("steps").index(i).line()
	}
	return Scenario{
		ID:          doc.ID,
		Title:       doc.Title,
		Level:       doc.Level,
		Source:      doc.Source,
		Feature:     doc.Feature,
		Profiles:    doc.Profiles,
		Needs:       needs,
		Labels:      doc.Labels,
		Description: strings.TrimSpace(doc.Description),
		File:        file,
		Line:        root.key("id").line(),
		doc:         doc,
		stepLines:   stepLines,
		finalLine:   root.key("final").line(),
	}
}

func addOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
