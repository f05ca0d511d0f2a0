package fakebackend

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The wire parser reads HTTP/1.1 requests as a lenient recipient would, so
// that it keeps going and records what arrived, and checks them as a strict
// one would, so that every deviation becomes a Violation. Where RFC 9112
// lets a recipient repair something (bare CR, obs-fold, bare LF), the parsed
// view holds the repair and the raw bytes hold the truth.

// framing is how a request body is delimited (RFC 9112 §6.3).
type framing int

const (
	noBody      framing = iota // neither Content-Length nor Transfer-Encoding
	lengthBody                 // Content-Length
	chunkedBody                // Transfer-Encoding ending in chunked
)

// message is one request as the parser read it.
type message struct {
	rawHead, rawBody      []byte
	method, target, proto string
	header                []Field
	body                  []byte
	trailers              []Field
	violations            []Violation

	framing        framing
	length         int64
	close          bool // the connection ends after this exchange
	expectContinue bool
	// status, when set, is the answer the backend gives itself (400, 413,
	// 431) before closing: the request cannot be delimited or breaks a limit,
	// so nothing after it on the connection can be trusted.
	status int
	// incomplete means the peer stopped sending in the middle of the message:
	// there is nobody to answer.
	incomplete bool
}

func (m *message) violate(rule string, raw []byte, format string, args ...any) {
	m.violations = append(m.violations, Violation{Rule: rule, Detail: fmt.Sprintf(format, args...), Bytes: raw})
}

// stop marks the message as one the backend answers itself with status.
func (m *message) stop(status int) {
	if m.status == 0 {
		m.status = status
	}
	m.close = true
}

// span is one line in a buffer: content [start, end), terminator [end, next).
type span struct{ start, end, next int }

func (s span) empty() bool { return s.start == s.end }

// errTooLong reports a line that would exceed the limit given to readLine.
var errTooLong = errors.New("line exceeds the limit")

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4 << 10

// parser reads requests from one connection. Its buffers are reused from one
// request to the next; everything a message keeps is copied out of them.
type parser struct {
	br      *bufio.Reader
	maxHead int
	maxBody int64

	head   []byte // the head being read
	lines  []span // its lines
	fields []int  // for each parsed field, the index of its line

	bareLF      int    // lines ending in a bare LF in this message
	firstBareLF []byte // the first of them
}

// readLine appends one line, terminator included, to *dst, which must not
// grow beyond limit bytes. At the end of input with a partial line it returns
// io.ErrUnexpectedEOF; with nothing read, io.EOF.
func (p *parser) readLine(dst *[]byte, limit int) (span, error) {
	b := *dst
	start := len(b)
	for {
		frag, err := p.br.ReadSlice('\n')
		if len(b)+len(frag) > limit {
			b = append(b, frag[:limit-len(b)]...)
			*dst = b
			return span{start, len(b), len(b)}, errTooLong
		}
		b = append(b, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		*dst = b
		if err != nil {
			if err == io.EOF && len(b) > start {
				err = io.ErrUnexpectedEOF
			}
			return span{start, len(b), len(b)}, err
		}
		end := len(b) - 1
		if end > start && b[end-1] == '\r' {
			end--
		} else {
			p.bareLF++
			if p.firstBareLF == nil {
				p.firstBareLF = b[start:]
			}
		}
		return span{start, end, len(b)}, nil
	}
}

// readHead reads a request line and header section into m and decides how
// the body is framed. It returns an error only when no request began at all
// (the peer closed or failed between requests); any later trouble is
// recorded in m.
func (p *parser) readHead(m *message) error {
	p.head, p.lines = p.head[:0], p.lines[:0]
	p.bareLF, p.firstBareLF = 0, nil
	var skipped []byte
	for {
		sp, err := p.readLine(&p.head, p.maxHead-len(skipped))
		if err != nil {
			if len(p.lines) == 0 && sp.empty() {
				return err // no request began: only empty lines, if anything
			}
			if !sp.empty() {
				p.lines = append(p.lines, sp)
			}
			m.rawHead = append([]byte(nil), p.head...)
			if err == errTooLong {
				m.violate(RuleHeadTooLarge, nil, "request head exceeds %d bytes", p.maxHead)
				m.stop(431)
			} else {
				m.violate(RuleIncompleteHead, nil, "connection ended after %d bytes of request head: %v", len(m.rawHead), err)
				m.incomplete, m.close = true, true
			}
			p.parseHead(m)
			return nil
		}
		if sp.empty() {
			if len(p.lines) > 0 {
				break // the empty line that ends the head
			}
			// RFC 9112 §2.2: a server SHOULD ignore at least one empty line
			// before the request line; a client MUST NOT send one.
			skipped = append(skipped, p.head...)
			p.head = p.head[:0]
			continue
		}
		p.lines = append(p.lines, sp)
	}
	m.rawHead = append([]byte(nil), p.head...)
	if skipped != nil {
		m.violate(RuleLeadingEmptyLine, skipped, "%d bytes of empty lines before the request line", len(skipped))
	}
	p.parseHead(m)
	p.frame(m)
	return nil
}

// parseHead fills m's parsed view from m.rawHead and p.lines. The strings
// share one copy of the head.
func (p *parser) parseHead(m *message) {
	if len(p.lines) == 0 {
		return
	}
	s := string(m.rawHead)
	rl := p.lines[0]
	line := p.repairCR(m, s[rl.start:rl.end], m.rawHead[rl.start:rl.next])
	p.requestLine(m, line, m.rawHead[rl.start:rl.next])
	p.fields = p.fields[:0]
	m.header = p.parseFields(m, s, m.rawHead, p.lines[1:], true)
	if p.bareLF > 0 {
		m.violate(RuleBareLF, p.firstBareLF, "%d lines of the head end in LF without CR", p.bareLF)
	}
}

// repairCR replaces each bare CR in line with SP (RFC 9112 §2.2).
func (p *parser) repairCR(m *message, line string, raw []byte) string {
	if strings.IndexByte(line, '\r') < 0 {
		return line
	}
	m.violate(RuleBareCR, raw, "CR not followed by LF")
	return strings.ReplaceAll(line, "\r", " ")
}

func (p *parser) requestLine(m *message, line string, raw []byte) {
	// Lenient split on whitespace runs, strict check on the exact form.
	i := strings.IndexAny(line, " \t")
	j := strings.LastIndexAny(line, " \t")
	switch {
	case i < 0:
		m.method = line
	case i == j:
		m.method, m.target = line[:i], strings.Trim(line[i+1:], " \t")
	default:
		m.method, m.target, m.proto = line[:i], strings.Trim(line[i+1:j], " \t"), line[j+1:]
	}
	if m.proto == "" || !isToken(m.method) || !validTarget(m.target) ||
		len(line) != len(m.method)+len(m.target)+len(m.proto)+2 || strings.IndexByte(line, '\t') >= 0 {
		m.violate(RuleInvalidRequestLine, raw, "request line %q is not method SP request-target SP HTTP-version", line)
	}
	if m.proto == "" {
		return
	}
	v := m.proto
	if len(v) != 8 || v[:5] != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]) {
		m.violate(RuleInvalidVersion, []byte(v), "version %q is not HTTP/DIGIT.DIGIT", v)
		return
	}
	if v != "HTTP/1.1" && v != "HTTP/1.0" {
		m.violate(RuleUnsupportedVersion, []byte(v), "version %s where HTTP/1.1 or HTTP/1.0 was expected", v)
	}
}

func (m *message) http10() bool { return m.proto == "HTTP/1.0" }

// parseFields parses field lines (RFC 9112 §5) of s, whose bytes are also in
// raw at the same offsets; lines excludes the empty line that ends them. head says whether they follow a request line
// (rather than a last chunk), which matters for a first line that starts with
// whitespace.
func (p *parser) parseFields(m *message, s string, raw []byte, lines []span, head bool) []Field {
	if len(lines) == 0 {
		return nil
	}
	fields := make([]Field, 0, len(lines))
	for k, ln := range lines {
		rawLine := raw[ln.start:ln.next]
		line := p.repairCR(m, s[ln.start:ln.end], rawLine)
		if line[0] == ' ' || line[0] == '\t' {
			if len(fields) == 0 {
				// RFC 9112 §2.2: consume each whitespace-preceded line after
				// the start line without further processing.
				m.violate(RuleObsFold, rawLine, "whitespace-preceded line before the first field")
				continue
			}
			m.violate(RuleObsFold, rawLine, "field line folded onto the previous one (obs-fold)")
			f := &fields[len(fields)-1]
			f.Value = trimOWS(f.Value + " " + trimOWS(line))
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			m.violate(RuleMissingColon, rawLine, "field line without a colon")
			continue
		}
		name := line[:colon]
		if t := strings.TrimRight(name, " \t"); len(t) != len(name) {
			m.violate(RuleSpaceBeforeColon, rawLine, "whitespace between field name %q and colon", t)
			name = t
		}
		switch {
		case name == "":
			m.violate(RuleEmptyFieldName, rawLine, "field line with an empty name")
		case !isToken(name):
			m.violate(RuleInvalidFieldName, rawLine, "field name %q is not a token", name)
		}
		value := trimOWS(line[colon+1:])
		checkValue(m, name, value, rawLine)
		fields = append(fields, Field{Name: name, Value: value})
		if head {
			p.fields = append(p.fields, k+1)
		}
	}
	return fields
}

// checkValue flags control characters in a field value (RFC 9110 §5.5). Bare
// CRs were already repaired and reported.
func checkValue(m *message, name, v string, raw []byte) {
	nul, ctl := false, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == 0:
			nul = true
		case c < 0x20 && c != '\t' || c == 0x7f:
			ctl = true
		}
	}
	if nul {
		m.violate(RuleNULInValue, raw, "NUL in the value of %q", name)
	}
	if ctl {
		m.violate(RuleCTLInValue, raw, "control character in the value of %q", name)
	}
}

// frame checks the fields that decide framing and persistence and decides
// how the body is delimited (RFC 9112 §6.3, §9.3).
func (p *parser) frame(m *message) {
	var hosts, cls, tes []int
	conn := ""
	for i, f := range m.header {
		switch {
		case equalFold(f.Name, "Host"):
			hosts = append(hosts, i)
		case equalFold(f.Name, "Content-Length"):
			cls = append(cls, i)
		case equalFold(f.Name, "Transfer-Encoding"):
			tes = append(tes, i)
		case equalFold(f.Name, "Connection"):
			conn += "," + f.Value
		case equalFold(f.Name, "Expect"):
			m.expectContinue = equalFold(f.Value, "100-continue") && !m.http10()
		}
	}
	if len(hosts) == 0 && m.proto == "HTTP/1.1" {
		m.violate(RuleMissingHost, p.lineBytes(m, 0), "HTTP/1.1 request without Host")
	}
	if len(hosts) > 1 {
		m.violate(RuleDuplicateHost, p.fieldBytes(m, hosts), "%d Host field lines", len(hosts))
	}
	if hasToken(conn, "close") || m.http10() && !hasToken(conn, "keep-alive") {
		m.close = true
	}

	if len(tes) > 0 {
		p.frameChunked(m, tes, cls)
		return
	}
	if len(cls) == 0 {
		return
	}
	var n int64 = -1
	var conflict bool
	members := 0
	for _, i := range cls {
		for v := range strings.SplitSeq(m.header[i].Value, ",") {
			v = trimOWS(v)
			members++
			k, ok := parseLength(v)
			if !ok {
				m.violate(RuleInvalidContentLength, p.fieldBytes(m, []int{i}), "Content-Length %q is not a decimal length", v)
				m.stop(400)
				return
			}
			if n >= 0 && k != n {
				conflict = true
			}
			n = k
		}
	}
	if conflict {
		m.violate(RuleConflictingContentLength, p.fieldBytes(m, cls), "Content-Length values differ")
		m.stop(400)
		return
	}
	if members > 1 {
		m.violate(RuleDuplicateContentLength, p.fieldBytes(m, cls), "Content-Length given %d times", members)
	}
	if n > p.maxBody {
		m.violate(RuleBodyTooLarge, p.fieldBytes(m, cls), "body of %d bytes exceeds the limit of %d", n, p.maxBody)
		m.stop(413)
		return
	}
	if n > 0 {
		m.framing, m.length = lengthBody, n
	}
}

func (p *parser) frameChunked(m *message, tes, cls []int) {
	if m.http10() {
		m.violate(RuleTransferEncodingHTTP10, p.fieldBytes(m, tes), "Transfer-Encoding in an HTTP/1.0 request")
		m.close = true
	}
	if len(cls) > 0 {
		m.violate(RuleContentLengthWithTransferEncoding, p.fieldBytes(m, append(cls, tes...)),
			"both Content-Length and Transfer-Encoding")
		// RFC 9112 §6.3 item 3: Transfer-Encoding wins, and the connection
		// must close after the response.
		m.close = true
	}
	var last string
	chunked := 0
	for _, i := range tes {
		for c := range strings.SplitSeq(m.header[i].Value, ",") {
			if c = trimOWS(c); c == "" {
				continue
			}
			last = c
			if equalFold(c, "chunked") {
				chunked++
			}
		}
	}
	if chunked > 1 {
		m.violate(RuleChunkedTwice, p.fieldBytes(m, tes), "chunked applied %d times", chunked)
	}
	if !equalFold(last, "chunked") {
		m.violate(RuleChunkedNotLast, p.fieldBytes(m, tes), "final transfer coding is %q, not chunked", last)
		m.stop(400)
		return
	}
	m.framing = chunkedBody
}

// lineBytes is line k of the head, terminator included.
func (p *parser) lineBytes(m *message, k int) []byte {
	ln := p.lines[k]
	return m.rawHead[ln.start:ln.next]
}

// fieldBytes is the raw lines of the given fields, concatenated.
func (p *parser) fieldBytes(m *message, fields []int) []byte {
	var b []byte
	for _, i := range fields {
		b = append(b, p.lineBytes(m, p.fields[i])...)
	}
	return b
}

// readBody reads the body m's head announced.
func (p *parser) readBody(m *message) {
	switch m.framing {
	case lengthBody:
		var err error
		m.body, err = p.readN(nil, m.length)
		m.rawBody = m.body
		if err != nil {
			m.violate(RuleIncompleteBody, nil, "connection ended after %d of %d body bytes: %v", len(m.body), m.length, err)
			m.incomplete, m.close = true, true
		}
	case chunkedBody:
		p.bareLF, p.firstBareLF = 0, nil
		p.readChunked(m)
		if p.bareLF > 0 {
			m.violate(RuleBareLF, p.firstBareLF, "%d lines of the chunked body end in LF without CR", p.bareLF)
		}
	}
}

// readN appends n bytes to dst, growing it as they arrive rather than
// trusting n up front.
func (p *parser) readN(dst []byte, n int64) ([]byte, error) {
	for n > 0 {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		k := int(min(n, int64(cap(dst)-len(dst))))
		got, err := io.ReadFull(p.br, dst[len(dst):len(dst)+k])
		dst = dst[:len(dst)+got]
		n -= int64(got)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return dst, err
		}
	}
	return dst, nil
}

// readChunked reads a chunked body (RFC 9112 §7.1) with its trailer section.
func (p *parser) readChunked(m *message) {
	raw := make([]byte, 0, 512)
	defer func() { m.rawBody = raw }()
	incomplete := func(err error) {
		m.violate(RuleIncompleteBody, nil, "connection ended inside the chunked body after %d bytes: %v", len(raw), err)
		m.incomplete, m.close = true, true
	}
	for {
		sp, err := p.readLine(&raw, len(raw)+maxChunkLine)
		line := raw[sp.start:sp.end]
		if err == errTooLong {
			m.violate(RuleInvalidChunkSize, line[:min(len(line), 64)], "chunk-size line longer than %d bytes", maxChunkLine)
			m.stop(400)
			return
		}
		if err != nil {
			incomplete(err)
			return
		}
		size, extOK, ok := parseChunkLine(line)
		if !ok {
			m.violate(RuleInvalidChunkSize, raw[sp.start:sp.next], "chunk-size line %q", line)
			m.stop(400)
			return
		}
		if !extOK {
			m.violate(RuleInvalidChunkExt, raw[sp.start:sp.next], "chunk extension in %q", line)
		}
		if size == 0 {
			break
		}
		if int64(len(m.body))+size > p.maxBody {
			m.violate(RuleBodyTooLarge, raw[sp.start:sp.next], "chunked body exceeds the limit of %d bytes", p.maxBody)
			m.stop(413)
			return
		}
		from := len(m.body)
		m.body, err = p.readN(m.body, size)
		raw = append(raw, m.body[from:]...)
		if err != nil {
			incomplete(err)
			return
		}
		if !p.chunkEnd(m, &raw, incomplete) {
			return
		}
	}
	p.readTrailers(m, &raw, incomplete)
}

// chunkEnd reads the CRLF after chunk data.
func (p *parser) chunkEnd(m *message, raw *[]byte, incomplete func(error)) bool {
	c, err := p.br.ReadByte()
	if err != nil {
		incomplete(err)
		return false
	}
	*raw = append(*raw, c)
	if c == '\n' {
		p.bareLF++
		if p.firstBareLF == nil {
			p.firstBareLF = []byte{'\n'}
		}
		return true
	}
	if c == '\r' {
		if c, err = p.br.ReadByte(); err != nil {
			incomplete(err)
			return false
		}
		*raw = append(*raw, c)
		if c == '\n' {
			return true
		}
	}
	m.violate(RuleMissingChunkCRLF, (*raw)[len(*raw)-min(len(*raw), 16):], "chunk data not followed by CRLF")
	m.stop(400)
	return false
}

// readTrailers reads the trailer section after the last chunk.
func (p *parser) readTrailers(m *message, raw *[]byte, incomplete func(error)) {
	from := len(*raw)
	var lines []span
	for {
		sp, err := p.readLine(raw, from+p.maxHead)
		if err == errTooLong {
			m.violate(RuleHeadTooLarge, nil, "trailer section exceeds %d bytes", p.maxHead)
			m.stop(431)
			return
		}
		if err != nil {
			incomplete(err)
			return
		}
		if sp.empty() {
			break
		}
		lines = append(lines, span{sp.start - from, sp.end - from, sp.next - from})
	}
	if len(lines) > 0 {
		section := (*raw)[from:]
		m.trailers = p.parseFields(m, string(section), section, lines, false)
	}
}

// parseChunkLine parses chunk-size [ chunk-ext ] (RFC 9112 §7.1, §7.1.1). ok
// is false when the size itself is unusable; extOK is false when what follows
// it is not a well-formed extension list.
func parseChunkLine(line []byte) (size int64, extOK, ok bool) {
	i := 0
	for i < len(line) && line[i] == '0' {
		i++
	}
	digits := i
	for i < len(line) && isHex(line[i]) {
		i++
	}
	if i == 0 || i-digits > 15 { // 15 hex digits fit in int64 with room
		return 0, false, false
	}
	v, err := strconv.ParseInt(string(line[digits:i]), 16, 64)
	if i > digits && err != nil {
		return 0, false, false
	}
	rest := line[i:]
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t') {
		j++
	}
	if j == len(rest) {
		return v, j == 0, true // trailing whitespace without an extension
	}
	if rest[j] != ';' {
		return 0, false, false
	}
	return v, validChunkExt(string(rest[j:])), true
}

// validChunkExt checks *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
func validChunkExt(s string) bool {
	ws := func() {
		for s != "" && (s[0] == ' ' || s[0] == '\t') {
			s = s[1:]
		}
	}
	tok := func() bool {
		n := 0
		for n < len(s) && isTchar(s[n]) {
			n++
		}
		s = s[n:]
		return n > 0
	}
	for {
		ws()
		if s == "" {
			return true
		}
		if s[0] != ';' {
			return false
		}
		s = s[1:]
		ws()
		if !tok() {
			return false
		}
		ws()
		if s == "" || s[0] != '=' {
			continue
		}
		s = s[1:]
		ws()
		if s != "" && s[0] == '"' {
			n, ok := quotedString(s)
			if !ok {
				return false
			}
			s = s[n:]
		} else if !tok() {
			return false
		}
	}
}

// quotedString returns the length of the quoted-string s starts with
// (RFC 9110 §5.6.4).
func quotedString(s string) (int, bool) {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			i++
			if i == len(s) || s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f {
				return 0, false
			}
		case c < 0x20 && c != '\t' || c == 0x7f:
			return 0, false
		}
	}
	return 0, false
}

// parseLength parses Content-Length = 1*DIGIT (RFC 9110 §8.6).
func parseLength(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// hasToken reports whether the comma-separated list s holds tok, ignoring
// case (RFC 9110 §5.6.1, §7.6.1).
func hasToken(s, tok string) bool {
	for v := range strings.SplitSeq(s, ",") {
		if equalFold(trimOWS(v), tok) {
			return true
		}
	}
	return false
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// isTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// validTarget accepts a request-target made of visible ASCII (RFC 9112 §3.2;
// URI characters are a subset).
func validTarget(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
