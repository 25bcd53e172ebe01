//go:build js && wasm

package jsbridge

import (
	"context"
	"errors"
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
	body, err := readBody(ctx, resp, r.MaxResponse)
	if err != nil {
		ac.Call("abort")
		return nil, err
	}
	ct := resp.Get("headers").Call("get", "Content-Type")
	out := &client.HTTPResponse{Status: resp.Get("status").Int(), Body: body}
	if ct.Type() == js.TypeString {
		out.ContentType = ct.String()
	}
	return out, nil
}

// readBody reads the response's body stream chunk by chunk, up to max
// bytes: a longer body (one without a Content-Length, say) is cancelled at
// the bound, never read whole into memory.
func readBody(ctx context.Context, resp js.Value, max int64) ([]byte, error) {
	stream := resp.Get("body")
	if stream.IsNull() || stream.IsUndefined() {
		return nil, nil // no body (a 204, a HEAD)
	}
	reader, err := call(stream, "getReader")
	if err != nil {
		return nil, fmt.Errorf("fetch: body: %w", err)
	}
	var body []byte
	for {
		chunk, err := callAwait(ctx, reader, "read")
		if err != nil {
			return nil, fmt.Errorf("fetch: body: %w", err)
		}
		if chunk.Type() != js.TypeObject {
			return nil, fmt.Errorf("fetch: body: a read gave a %s", chunk.Type())
		}
		if chunk.Get("done").Truthy() {
			return body, nil
		}
		v := chunk.Get("value")
		if v.Type() != js.TypeObject || !v.InstanceOf(js.Global().Get("Uint8Array")) {
			return nil, errors.New("fetch: body: a chunk is not a Uint8Array")
		}
		n := v.Get("byteLength").Int()
		if int64(len(body))+int64(n) > max {
			_, _ = call(reader, "cancel")
			return nil, fmt.Errorf("fetch: %w: over %d bytes", client.ErrResponseTooLarge, max)
		}
		b := make([]byte, n)
		js.CopyBytesToGo(b, v)
		body = append(body, b...)
	}
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
