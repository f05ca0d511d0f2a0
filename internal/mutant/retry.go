package mutant

import (
	"bytes"
	"io"
	"net/http"
)

// retrySame is retry-same-backend: an attempt that fails is sent once more
// to the same backend before the proxy hears of the failure, whatever the
// method, as a naive "retry on network error" layer does. The body is
// recorded as the first attempt reads it, so that the retry carries it
// whole: a copy of what was read when all of it was, the untouched stream
// when none of it was (the proxy may then still fail the request over, as
// it does without the retry), no retry when only part of it was.
func retrySame(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(out *http.Request) (*http.Response, error) {
		var rec *recorder
		if out.Body != nil && out.Body != http.NoBody {
			rec = &recorder{src: out.Body}
			out = out.Clone(out.Context())
			out.Body = rec
		}
		res, err := next.RoundTrip(out)
		if err == nil || out.Context().Err() != nil {
			return res, err
		}
		again := out.Clone(out.Context())
		if rec != nil {
			switch b, ok := rec.complete(out.ContentLength); {
			case ok:
				again.Body = io.NopCloser(bytes.NewReader(b))
			case rec.untouched():
				again.Body = &recorder{src: rec.src}
			default:
				return nil, err
			}
		}
		return next.RoundTrip(again)
	})
}
