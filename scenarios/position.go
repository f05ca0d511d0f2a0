package scenarios

import (
	"github.com/goccy/go-yaml/ast"
)

// at is where a decoded value came from: the document's root node and the
// path of keys (string) and sequence indices (int) that leads to the value.
// Semantic checks run on decoded structs and use it to report a line.
type at struct {
	root ast.Node
	path []any
}

func (a at) key(k string) at { return at{a.root, append(append([]any(nil), a.path...), k)} }
func (a at) index(i int) at  { return at{a.root, append(append([]any(nil), a.path...), i)} }

// line is the line of the value at the path, or of its deepest ancestor
// present in the file (a missing key is reported where its parent is). A
// mapping entry is reported at its key, which is where a reader looks.
func (a at) line() int {
	n := unwrap(a.root)
	line := lineOf(n)
	for _, step := range a.path {
		switch s := step.(type) {
		case string:
			m, ok := n.(*ast.MappingNode)
			if !ok {
				return line
			}
			var found *ast.MappingValueNode
			for _, mv := range m.Values {
				if mv.Key != nil && keyString(mv.Key) == s {
					found = mv
					break
				}
			}
			if found == nil {
				return line
			}
			line = lineOf(found.Key)
			n = unwrap(found.Value)
		case int:
			seq, ok := n.(*ast.SequenceNode)
			if !ok || s < 0 || s >= len(seq.Values) {
				return line
			}
			n = unwrap(seq.Values[s])
			line = lineOf(n)
		}
	}
	return line
}

// unwrap sees through anchors and tags to the node that holds the value.
// A single-entry mapping is parsed as a bare MappingValueNode; it is made a
// MappingNode so the walk above has one shape to handle.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.MappingValueNode:
			return &ast.MappingNode{BaseNode: &ast.BaseNode{}, Start: v.Start, Values: []*ast.MappingValueNode{v}}
		default:
			return n
		}
	}
}

func lineOf(n ast.Node) int {
	if n == nil {
		return 0
	}
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		return lineOf(m.Values[0].Key)
	}
	if t := n.GetToken(); t != nil && t.Position != nil {
		return t.Position.Line
	}
	return 0
}

// keyString is a mapping key as the decoder sees it: unquoted.
func keyString(k ast.MapKeyNode) string {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	return k.String()
}
