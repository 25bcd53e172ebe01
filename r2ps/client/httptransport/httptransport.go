// Package httptransport carries the R2PS client's requests over net/http:
// the [client.Transport] of native builds. It is a package of its own so
// that importing r2ps/client does not link net/http (the browser build uses
// the host's fetch instead, manager/jsbridge).
package httptransport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/wsca/wsca/r2ps/client"
)

// DefaultTimeout bounds a whole exchange when New is given no client.
const DefaultTimeout = 30 * time.Second

// Transport is a client.Transport over an *http.Client.
type Transport struct {
	hc *http.Client
}

var _ client.Transport = (*Transport)(nil)

// New returns a transport over hc: its timeout, redirect policy and
// round tripper apply. A nil hc is a client with DefaultTimeout.
func New(hc *http.Client) *Transport {
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Transport{hc: hc}
}

// Do implements client.Transport.
func (t *Transport) Do(ctx context.Context, r *client.HTTPRequest) (*client.HTTPResponse, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return nil, fmt.Errorf("httptransport: %w", err)
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > r.MaxResponse {
		return nil, fmt.Errorf("%w: %d bytes announced", client.ErrResponseTooLarge, resp.ContentLength)
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, r.MaxResponse+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > r.MaxResponse {
		return nil, fmt.Errorf("%w: over %d bytes", client.ErrResponseTooLarge, r.MaxResponse)
	}
	return &client.HTTPResponse{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: out}, nil
}
