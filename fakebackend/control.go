package fakebackend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// The control API is how a backend running in another process or container is
// driven. It is plain JSON over net/http on a listener of its own: unlike the
// data plane, nothing here is under test, so the standard server is the right
// tool.
//
//	GET  /info                        {"name", "url", "addr"}
//	GET  /requests[?wait=N&timeout=D] []Request; with wait, blocks until N requests
//	GET  /conns                       []Conn
//	GET  /stats                       Stats
//	PUT  /default                     Behaviour
//	POST /queue                       []Behaviour
//	PUT  /mode                        {"mode": "serve"|"refuse"|"blackhole"}
//	POST /reset
//
// Errors are answered as {"error": "..."}: 400 when the request itself is bad
// (malformed JSON, unknown fields, a bad query parameter), 422 when the
// backend refused a well-formed value, 504 when a wait timed out (the body
// then also carries the requests recorded so far), 500 otherwise.

// Info is what GET /info answers: who the backend is and where its data plane
// listens, as the backend itself sees it.
type Info struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Addr string `json:"addr"`
}

// modeBody is the body of PUT /mode.
type modeBody struct {
	Mode Mode `json:"mode"`
}

// errorBody is the body of every error answer. Requests is set only when a
// wait timed out, so the caller still sees what did arrive.
type errorBody struct {
	Error    string        `json:"error"`
	Requests []wireRequest `json:"requests,omitempty"`
}

// maxControlBody bounds what the control API reads from a request body: a
// queue of behaviours with large fixed bodies fits easily, a runaway client
// does not exhaust memory.
const maxControlBody = 64 << 20

// ControlHandler returns the control API of b.
func ControlHandler(b Backend) http.Handler {
	c := &control{b: b}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", c.info)
	mux.HandleFunc("GET /requests", c.requests)
	mux.HandleFunc("GET /conns", c.conns)
	mux.HandleFunc("GET /stats", c.stats)
	mux.HandleFunc("PUT /default", c.setDefault)
	mux.HandleFunc("POST /queue", c.enqueue)
	mux.HandleFunc("PUT /mode", c.setMode)
	mux.HandleFunc("POST /reset", c.reset)
	return mux
}

type control struct {
	b Backend
}

func (c *control) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Info{Name: c.b.Name(), URL: c.b.URL(), Addr: c.b.Addr()})
}

func (c *control) requests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("wait") {
		if q.Has("timeout") {
			writeError(w, http.StatusBadRequest, errors.New("timeout given without wait"))
			return
		}
		reqs, err := c.b.Requests(r.Context())
		answer(w, toWireRequests(reqs), err)
		return
	}
	n, err := strconv.Atoi(q.Get("wait"))
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("wait=%q: want a count of requests, 0 or more", q.Get("wait")))
		return
	}
	ctx := r.Context()
	if s := q.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("timeout=%q: want a positive Go duration such as 2s", s))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	reqs, err := c.b.WaitRequests(ctx, n)
	if err != nil && ctx.Err() != nil && r.Context().Err() == nil {
		// Our own timeout fired, not the client's: tell the client, with
		// what arrived meanwhile, as WaitRequests would in-process.
		if reqs == nil {
			reqs, _ = c.b.Requests(r.Context())
		}
		writeJSON(w, http.StatusGatewayTimeout, errorBody{
			Error:    fmt.Sprintf("waited %s for %d requests, got %d: %v", q.Get("timeout"), n, len(reqs), err),
			Requests: toWireRequests(reqs),
		})
		return
	}
	answer(w, toWireRequests(reqs), err)
}

func (c *control) conns(w http.ResponseWriter, r *http.Request) {
	conns, err := c.b.Conns(r.Context())
	answer(w, conns, err)
}

func (c *control) stats(w http.ResponseWriter, r *http.Request) {
	st, err := c.b.Stats(r.Context())
	answer(w, st, err)
}

func (c *control) setDefault(w http.ResponseWriter, r *http.Request) {
	var b wireBehaviour
	if !decode(w, r, &b) {
		return
	}
	refused(w, c.b.SetDefault(r.Context(), b.behaviour()))
}

func (c *control) enqueue(w http.ResponseWriter, r *http.Request) {
	var ws []wireBehaviour
	if !decode(w, r, &ws) {
		return
	}
	bs := make([]Behaviour, len(ws))
	for i, wb := range ws {
		bs[i] = wb.behaviour()
	}
	refused(w, c.b.Enqueue(r.Context(), bs...))
}

func (c *control) setMode(w http.ResponseWriter, r *http.Request) {
	var m modeBody
	if !decode(w, r, &m) {
		return
	}
	if m.Mode == "" {
		writeError(w, http.StatusBadRequest, errors.New(`body: want {"mode": "serve"|"refuse"|"blackhole"}`))
		return
	}
	refused(w, c.b.SetMode(r.Context(), m.Mode))
}

func (c *control) reset(w http.ResponseWriter, r *http.Request) {
	if err := c.b.Reset(r.Context()); err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decode reads exactly one JSON value into v, rejecting unknown fields: a
// misspelt behaviour field silently ignored would make a spec test something
// other than what it says. It answers 400 and reports false on failure.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Trailing whitespace is fine, a second value or garbage is not.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("decode %s %s body: %w", r.Method, r.URL.Path, err))
		return false
	}
	return true
}

// answer writes v, or err as a server error.
func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// refused answers a write: 204, or 422 with the backend's reason.
func refused(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{Error: fmt.Sprintf("encode answer: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// What the control API carries is JSON, and a JSON string holds only valid
// UTF-8: a field value with obs-text (RFC 9110 §5.5), a binary body or a raw
// malformed response would arrive mangled. So wherever Go holds bytes in a
// string, the wire form adds the exact bytes, base64, next to the readable
// string, only when they are not valid UTF-8; readers that know the extra
// key prefer it.

// exact returns s's bytes when a JSON string cannot carry them, else nil.
func exact(s string) []byte {
	if utf8.ValidString(s) {
		return nil
	}
	return []byte(s)
}

// or returns the bytes of b when present, else s.
func or(b []byte, s string) string {
	if b != nil {
		return string(b)
	}
	return s
}

// MarshalJSON writes {"name", "value"}, with "name_bytes" and "value_bytes"
// added when the name or value is not valid UTF-8.
func (f Field) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireField{Name: f.Name, Value: f.Value, NameBytes: exact(f.Name), ValueBytes: exact(f.Value)})
}

// UnmarshalJSON reads what MarshalJSON writes, and rejects unknown keys.
func (f *Field) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireField
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("field: %w", err)
	}
	*f = Field{Name: or(w.NameBytes, w.Name), Value: or(w.ValueBytes, w.Value)}
	return nil
}

type wireField struct {
	Name       string `json:"name"`
	Value      string `json:"value"`
	NameBytes  []byte `json:"name_bytes,omitempty"`
	ValueBytes []byte `json:"value_bytes,omitempty"`
}

// wireRequest is a Request on the control API.
type wireRequest struct {
	Request
	MethodBytes []byte `json:"method_bytes,omitempty"`
	TargetBytes []byte `json:"target_bytes,omitempty"`
	ProtoBytes  []byte `json:"proto_bytes,omitempty"`
}

func toWireRequests(rs []Request) []wireRequest {
	if rs == nil {
		return nil
	}
	ws := make([]wireRequest, len(rs))
	for i, r := range rs {
		ws[i] = wireRequest{Request: r, MethodBytes: exact(r.Method), TargetBytes: exact(r.Target), ProtoBytes: exact(r.Proto)}
	}
	return ws
}

func fromWireRequests(ws []wireRequest) []Request {
	if ws == nil {
		return nil
	}
	rs := make([]Request, len(ws))
	for i, w := range ws {
		rs[i] = w.Request
		rs[i].Method, rs[i].Target, rs[i].Proto = or(w.MethodBytes, w.Method), or(w.TargetBytes, w.Target), or(w.ProtoBytes, w.Proto)
	}
	return rs
}

// wireBehaviour is a Behaviour on the control API.
type wireBehaviour struct {
	Behaviour
	BodyBytes []byte `json:"body_bytes,omitempty"`
	RawBytes  []byte `json:"raw_bytes,omitempty"`
}

func toWireBehaviour(b Behaviour) wireBehaviour {
	w := wireBehaviour{Behaviour: b}
	if b.Body != nil {
		w.BodyBytes = exact(*b.Body)
	}
	if b.Raw != nil {
		w.RawBytes = exact(*b.Raw)
	}
	return w
}

func (w wireBehaviour) behaviour() Behaviour {
	b := w.Behaviour
	if w.BodyBytes != nil {
		b.Body = Text(string(w.BodyBytes))
	}
	if w.RawBytes != nil {
		b.Raw = Text(string(w.RawBytes))
	}
	return b
}
