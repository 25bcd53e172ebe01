package client

import (
	"context"
	"errors"
)

// Transport carries the client's HTTP exchanges with the server: a GET of
// the server's keys and a POST of each R2PS message. The client defines it
// rather than taking an *http.Client so that it links no net/http: package
// httptransport implements it over net/http; the browser build implements
// it over the host's fetch (manager/jsbridge), where net/http would cost
// the WebAssembly module about 1 MB gzip (docs/benchmarks.md).
//
// Timeouts are the transport's (and ctx's); redirects are the transport's
// policy.
type Transport interface {
	// Do sends req and returns the server's answer, whatever its status.
	// It fails only when no whole answer came back: the network failed,
	// ctx ended, or the body was longer than req.MaxResponse (an error
	// wrapping ErrResponseTooLarge).
	Do(ctx context.Context, req *HTTPRequest) (*HTTPResponse, error)
}

// HTTPRequest is one exchange the client asks of its Transport.
type HTTPRequest struct {
	Method string // "GET" or "POST"
	URL    string
	// ContentType and Body are the request's (empty for a GET).
	ContentType string
	Body        []byte
	// MaxResponse bounds the response body in bytes (the client always
	// sets it); a longer one is an error, never a truncated body.
	MaxResponse int64
}

// HTTPResponse is the server's answer.
type HTTPResponse struct {
	Status      int // the HTTP status code
	ContentType string
	Body        []byte
}

// ErrResponseTooLarge is what a Transport wraps when a response body is
// longer than the request's MaxResponse.
var ErrResponseTooLarge = errors.New("client: the response is too large")

// TransportError is a failure to exchange a message with the server (the
// network, a timeout, a cancelled context, an oversized answer): the
// request may or may not have reached it. A server's refusal is an *Error
// instead.
type TransportError struct {
	Err error
}

func (e *TransportError) Error() string { return "client: transport: " + e.Err.Error() }

func (e *TransportError) Unwrap() error { return e.Err }

// errNoResponse: a Transport returned neither a response nor an error.
var errNoResponse = errors.New("no response and no error")

// exchange runs req over t; every failure is a *TransportError.
func exchange(ctx context.Context, t Transport, req *HTTPRequest) (*HTTPResponse, error) {
	resp, err := t.Do(ctx, req)
	switch {
	case err != nil:
		return nil, &TransportError{Err: err}
	case resp == nil:
		return nil, &TransportError{Err: errNoResponse}
	}
	return resp, nil
}

// Bounds of response bodies.
const (
	maxKeysResponse = 1 << 16
	// statusOK is HTTP's 200, named here to keep net/http out.
	statusOK = 200
)
