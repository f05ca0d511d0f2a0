package fakebackend

// Rule identifiers of Violation.Rule. They are stable: specs, reports and
// expected-verdict files refer to them. Each names the clause it comes from.
const (
	// RuleInvalidRequestLine: the request line is not
	// method SP request-target SP HTTP-version (RFC 9112 §3), e.g. two spaces,
	// a tab, a method that is not a token or a target with a space or CTL.
	RuleInvalidRequestLine = "invalid-request-line"
	// RuleInvalidVersion: the version is not "HTTP/" DIGIT "." DIGIT, which is
	// case-sensitive (RFC 9112 §2.3).
	RuleInvalidVersion = "invalid-version"
	// RuleUnsupportedVersion: a well-formed version other than HTTP/1.0 or
	// HTTP/1.1, which a proxy speaking HTTP/1.1 to a backend never sends
	// (RFC 9110 §2.5, RFC 9112 §2.3).
	RuleUnsupportedVersion = "unsupported-version"
	// RuleLeadingEmptyLine: empty lines before the request line; a recipient
	// may skip them but a client must not send them (RFC 9112 §2.2).
	RuleLeadingEmptyLine = "leading-empty-line"
	// RuleBareLF: a line ends in LF without CR. Recipients may accept it; a
	// sender must use CRLF (RFC 9112 §2.2).
	RuleBareLF = "bare-lf"
	// RuleBareCR: a CR not followed by LF (RFC 9112 §2.2). The parsed view
	// replaces it with SP, as the RFC allows.
	RuleBareCR = "bare-cr"
	// RuleObsFold: a field line starts with whitespace, continuing the
	// previous one (obs-fold, RFC 9112 §5.2), or whitespace-preceded lines
	// follow the request line (RFC 9112 §2.2). Folded values are joined with
	// SP in the parsed view.
	RuleObsFold = "obs-fold"
	// RuleMissingColon: a field line without a colon (RFC 9112 §5). The line
	// is left out of the parsed view.
	RuleMissingColon = "missing-colon"
	// RuleEmptyFieldName: a field line starting with a colon; a field name is
	// a token, one or more characters (RFC 9110 §5.1).
	RuleEmptyFieldName = "empty-field-name"
	// RuleInvalidFieldName: a field name with a character that is not a
	// tchar (RFC 9110 §5.1, §5.6.2).
	RuleInvalidFieldName = "invalid-field-name"
	// RuleSpaceBeforeColon: whitespace between a field name and its colon,
	// which a server must reject (RFC 9112 §5.1). The parsed name is trimmed.
	RuleSpaceBeforeColon = "space-before-colon"
	// RuleNULInValue: NUL in a field value (RFC 9110 §5.5).
	RuleNULInValue = "nul-in-value"
	// RuleCTLInValue: another control character (other than HTAB) in a field
	// value (RFC 9110 §5.5: field-vchar excludes CTLs).
	RuleCTLInValue = "ctl-in-value"
	// RuleMissingHost: an HTTP/1.1 request without Host (RFC 9112 §3.2).
	RuleMissingHost = "missing-host"
	// RuleDuplicateHost: more than one Host field line (RFC 9112 §3.2).
	RuleDuplicateHost = "duplicate-host"
	// RuleDuplicateContentLength: Content-Length sent more than once (or as a
	// list) with equal values. A recipient may accept it (RFC 9110 §8.6), but
	// a sender generating it is sloppy and the next hop may not be lenient.
	RuleDuplicateContentLength = "duplicate-content-length"
	// RuleConflictingContentLength: Content-Length values that differ; the
	// framing is unrecoverable (RFC 9112 §6.3 item 5).
	RuleConflictingContentLength = "conflicting-content-length"
	// RuleInvalidContentLength: a Content-Length that is not 1*DIGIT or does
	// not fit in 63 bits (RFC 9110 §8.6, RFC 9112 §6.3 item 5).
	RuleInvalidContentLength = "invalid-content-length"
	// RuleContentLengthWithTransferEncoding: both framing fields; a sender
	// must not (RFC 9112 §6.1), Transfer-Encoding wins (RFC 9112 §6.3 item 3),
	// and the pair is the classic request smuggling vector.
	RuleContentLengthWithTransferEncoding = "content-length-with-transfer-encoding"
	// RuleChunkedNotLast: Transfer-Encoding whose final coding is not chunked;
	// a request body cannot be delimited (RFC 9112 §6.3 item 4).
	RuleChunkedNotLast = "chunked-not-last"
	// RuleChunkedTwice: chunked applied more than once (RFC 9112 §6.1).
	RuleChunkedTwice = "chunked-twice"
	// RuleTransferEncodingHTTP10: Transfer-Encoding in an HTTP/1.0 request;
	// its framing must be treated as faulty (RFC 9112 §6.1).
	RuleTransferEncodingHTTP10 = "transfer-encoding-http10"
	// RuleInvalidChunkSize: a chunk-size line that is not 1*HEXDIG, or
	// overflows (RFC 9112 §7.1).
	RuleInvalidChunkSize = "invalid-chunk-size"
	// RuleInvalidChunkExt: a chunk extension not of the form
	// ;name[=value] (RFC 9112 §7.1.1). The extension is ignored.
	RuleInvalidChunkExt = "invalid-chunk-ext"
	// RuleMissingChunkCRLF: chunk data not followed by CRLF (RFC 9112 §7.1).
	RuleMissingChunkCRLF = "missing-chunk-crlf"
	// RuleIncompleteHead: the connection ended inside the request head
	// (RFC 9112 §8).
	RuleIncompleteHead = "incomplete-head"
	// RuleIncompleteBody: the connection ended before the body its framing
	// announced was complete (RFC 9112 §8).
	RuleIncompleteBody = "incomplete-body"
	// RuleHeadTooLarge: the head exceeds the backend's limit (WithMaxHead);
	// not an RFC rule, a safety cap (RFC 9110 §15.5.20 for the 431 answer).
	RuleHeadTooLarge = "head-too-large"
	// RuleBodyTooLarge: the body exceeds the backend's limit (WithMaxBody).
	RuleBodyTooLarge = "body-too-large"
)
