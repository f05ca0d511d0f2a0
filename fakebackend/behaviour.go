package fakebackend

import (
	"errors"
	"fmt"
	"time"
)

// Behaviour says how a backend answers one request. The zero value is Echo:
// 200, a JSON echo of the request (see Echo), Content-Length framing.
// A Behaviour is plain data so that it travels unchanged through the control
// API and can be written in a scenario file.
type Behaviour struct {
	// Status of the final response; 0 means 200.
	Status int `json:"status,omitempty" yaml:"status,omitempty"`
	// Reason phrase; empty means the standard one for Status.
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
	// Header lines sent verbatim after the backend's own (Date is not sent;
	// X-Proxyspec-Backend and Cache-Control: no-store always are, and the
	// framing header that Framing implies). Hop-by-hop fields and fields named
	// in Connection may be listed here to test the response direction.
	Header []Field `json:"header,omitempty" yaml:"header,omitempty"`
	// Body of the response. When nil (and not NoBody), the body is the JSON
	// echo of the request.
	Body *string `json:"body,omitempty" yaml:"body,omitempty"`
	// NoBody sends no body at all (and Content-Length: 0 with Length framing).
	NoBody bool `json:"no_body,omitempty" yaml:"no_body,omitempty"`
	// Framing of the body: "" or "length" (Content-Length), "chunked",
	// "close" (no length; the backend closes the connection to end the body).
	Framing string `json:"framing,omitempty" yaml:"framing,omitempty"`
	// ChunkSize splits a chunked body into chunks of at most this many bytes
	// (0: one chunk).
	ChunkSize int `json:"chunk_size,omitempty" yaml:"chunk_size,omitempty"`
	// Trailers sent after the last chunk (Framing "chunked" only).
	Trailers []Field `json:"trailers,omitempty" yaml:"trailers,omitempty"`
	// Informational responses (1xx) sent before the final one, in order.
	Informational []Informational `json:"informational,omitempty" yaml:"informational,omitempty"`
	// Continue sends "100 Continue" as soon as the request head has been read
	// and the request carries Expect: 100-continue, before reading its body.
	Continue bool `json:"continue,omitempty" yaml:"continue,omitempty"`
	// Delay before the status line is written (after the request was read).
	Delay Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	// SlowBody writes the body Bytes at a time, waiting Interval between writes.
	SlowBody *Slow `json:"slow_body,omitempty" yaml:"slow_body,omitempty"`
	// Fault makes the backend fail instead of (or while) answering.
	Fault Fault `json:"fault,omitempty" yaml:"fault,omitempty"`
	// Raw, when set, is written verbatim as the whole response (after Delay),
	// and nothing else is sent; for garbage and malformed responses.
	Raw *string `json:"raw,omitempty" yaml:"raw,omitempty"`
	// Close closes the connection after this response (with
	// Connection: close in the response header).
	Close bool `json:"close,omitempty" yaml:"close,omitempty"`
}

// Validate reports what in b a backend cannot carry out: an unknown fault or
// framing, a status outside 100-999, a 1xx that is not informational,
// pacing without a positive step, trailers without chunked framing. It does
// not judge header lines or Raw: sending malformed ones is their purpose.
func (b Behaviour) Validate() error {
	var errs []error
	if b.Status != 0 && (b.Status < 100 || b.Status > 999) {
		errs = append(errs, fmt.Errorf("status %d: want 100-999", b.Status))
	}
	switch b.Framing {
	case "", "length", "chunked", "close":
	default:
		errs = append(errs, fmt.Errorf("framing %q: want length, chunked or close", b.Framing))
	}
	if b.ChunkSize < 0 {
		errs = append(errs, fmt.Errorf("chunk_size %d: want 0 or more", b.ChunkSize))
	}
	if len(b.Trailers) > 0 && b.Framing != "chunked" {
		errs = append(errs, errors.New("trailers need chunked framing"))
	}
	for _, in := range b.Informational {
		if in.Status < 100 || in.Status > 199 {
			errs = append(errs, fmt.Errorf("informational status %d: want 100-199", in.Status))
		}
	}
	if b.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay %s: want 0 or more", b.Delay))
	}
	if s := b.SlowBody; s != nil && (s.Bytes <= 0 || s.Interval < 0) {
		errs = append(errs, fmt.Errorf("slow_body {bytes %d, interval %s}: want bytes > 0, interval >= 0", s.Bytes, s.Interval))
	}
	switch b.Fault {
	case NoFault, CloseBeforeResponse, ResetBeforeResponse, ResetBeforeRequest, CloseAfterHeaders,
		ResetAfterHeaders, CloseMidBody, ResetMidBody, Hang, HangMidBody:
	default:
		errs = append(errs, fmt.Errorf("fault %q: unknown", b.Fault))
	}
	return errors.Join(errs...)
}

// Informational is one 1xx response.
type Informational struct {
	Status int     `json:"status" yaml:"status"`
	Header []Field `json:"header,omitempty" yaml:"header,omitempty"`
}

// Slow paces a body.
type Slow struct {
	Bytes    int      `json:"bytes" yaml:"bytes"`
	Interval Duration `json:"interval" yaml:"interval"`
}

// Fault is a way a backend fails one request.
type Fault string

const (
	// NoFault answers normally.
	NoFault Fault = ""
	// CloseBeforeResponse reads the request, then closes with a FIN and no byte
	// of response.
	CloseBeforeResponse Fault = "close-before-response"
	// ResetBeforeResponse reads the request, then resets the connection (RST,
	// via SO_LINGER 0).
	ResetBeforeResponse Fault = "reset-before-response"
	// ResetBeforeRequest resets the connection as soon as it is accepted,
	// before reading anything. As a per-request behaviour it applies to the
	// next connection accepted.
	ResetBeforeRequest Fault = "reset-before-request"
	// CloseAfterHeaders sends the status line and header section (with a
	// Content-Length or chunked framing promising a body), then closes.
	CloseAfterHeaders Fault = "close-after-headers"
	// ResetAfterHeaders is CloseAfterHeaders with a reset.
	ResetAfterHeaders Fault = "reset-after-headers"
	// CloseMidBody sends the head and half of the body, then closes.
	CloseMidBody Fault = "close-mid-body"
	// ResetMidBody sends the head and half of the body, then resets.
	ResetMidBody Fault = "reset-mid-body"
	// Hang reads the request and never answers, until the peer goes away or
	// the backend is closed or reset.
	Hang Fault = "hang"
	// HangMidBody sends the head and half of the body, then stalls.
	HangMidBody Fault = "hang-mid-body"
)

// Mode is how a backend's listener treats new connections.
type Mode string

const (
	// Serve accepts connections and answers them.
	Serve Mode = "serve"
	// Refuse makes connection attempts fail at once with ECONNREFUSED: the
	// listener is closed but the port stays bound (not listening), so that
	// no other program takes it meanwhile. (On Linux; while connections
	// accepted earlier or their TIME_WAIT remain, a program that sets
	// SO_REUSEADDR could still share it. Elsewhere the port is released.)
	Refuse Mode = "refuse"
	// Blackhole makes connection attempts time out: the port is held by a
	// socket whose accept queue is full and never drained, so SYNs go
	// unanswered. No root privileges are needed.
	Blackhole Mode = "blackhole"
)

// Duration is a time.Duration that reads and writes as a Go duration string
// ("250ms") in JSON and YAML.
type Duration time.Duration

// D is shorthand for converting a time.Duration.
func D(d time.Duration) Duration { return Duration(d) }

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Text is shorthand for a fixed body.
func Text(s string) *string { return &s }
