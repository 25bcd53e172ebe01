//go:build js && wasm

package jsbridge

import (
	"context"
	"fmt"
	"strconv"
	"syscall/js"
	"time"

	"github.com/wsca/wsca/r2ps/client"
)

// fetchTransport sends the R2PS client's requests with the host's fetch():
// a client.Transport without net/http, which would cost the WebAssembly
// module about 1 MB gzip (docs/benchmarks.md). Go's own js/wasm transport
// turns fetch off under Node (it then dials, which js/wasm cannot), and
// R2PS needs nothing fetch lacks. Redirects are errors and no credentials
// (cookies) are sent.
type fetchTransport struct {
	timeout time.Duration
}

// fetchTimeout bounds a whole exchange, as the native transport's does.
const fetchTimeout = 30 * time.Second

func newTransport() client.Transport { return fetchTransport{timeout: fetchTimeout} }

// Do implements client.Transport.
func (t fetchTransport) Do(ctx context.Context, r *client.HTTPRequest) (*client.HTTPResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	headers := js.Global().Get("Headers").New()
	if r.ContentType != "" {
		headers.Call("append", "Content-Type", r.ContentType)
	}
	opts := map[string]any{"method": r.Method, "headers": headers, "redirect": "error", "credentials": "omit"}
	if len(r.Body) > 0 {
		opts["body"] = bytesToJS(r.Body)
	}
	ac := js.Global().Get("AbortController").New()
	opts["signal"] = ac.Get("signal")
	stop := context.AfterFunc(ctx, func() { ac.Call("abort") })
	defer stop()
	resp, err := callAwait(ctx, js.Global(), "fetch", r.URL, opts)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if n, ok := contentLength(resp); ok && n > r.MaxResponse {
		ac.Call("abort")
		return nil, fmt.Errorf("fetch: %w: %d bytes announced", client.ErrResponseTooLarge, n)
	}
	buf, err := callAwait(ctx, resp, "arrayBuffer")
	if err != nil {
		return nil, fmt.Errorf("fetch: body: %w", err)
	}
	arr := js.Global().Get("Uint8Array").New(buf)
	if n := int64(arr.Length()); n > r.MaxResponse {
		return nil, fmt.Errorf("fetch: %w: %d bytes", client.ErrResponseTooLarge, n)
	}
	body := make([]byte, arr.Length())
	js.CopyBytesToGo(body, arr)
	ct := resp.Get("headers").Call("get", "Content-Type")
	out := &client.HTTPResponse{Status: resp.Get("status").Int(), Body: body}
	if ct.Type() == js.TypeString {
		out.ContentType = ct.String()
	}
	return out, nil
}

// contentLength is the response's Content-Length header, if it has a valid
// one.
func contentLength(resp js.Value) (int64, bool) {
	v := resp.Get("headers").Call("get", "Content-Length")
	if v.Type() != js.TypeString {
		return 0, false
	}
	n, err := strconv.ParseInt(v.String(), 10, 64)
	return n, err == nil && n >= 0
}
