//go:build js && wasm

package jsbridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall/js"
	"time"
)

// fetchTransport sends requests with the host's fetch(). Go's own js/wasm
// transport turns fetch off under Node (it then dials, which js/wasm
// cannot), and R2PS needs nothing fetch lacks.
type fetchTransport struct{}

// maxResponse bounds a response body.
const maxResponse = 4 << 20

func newHTTPClient() *http.Client {
	return &http.Client{Transport: fetchTransport{}, Timeout: 30 * time.Second}
}

// RoundTrip implements http.RoundTripper.
func (fetchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	headers := js.Global().Get("Headers").New()
	for k, vs := range req.Header {
		for _, v := range vs {
			headers.Call("append", k, v)
		}
	}
	opts := map[string]any{"method": req.Method, "headers": headers, "redirect": "error", "credentials": "omit"}
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxResponse))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(b) > 0 {
			opts["body"] = bytesToJS(b)
		}
	}
	ac := js.Global().Get("AbortController").New()
	opts["signal"] = ac.Get("signal")
	stop := context.AfterFunc(ctx, func() { ac.Call("abort") })
	defer stop()
	resp, err := callAwait(ctx, js.Global(), "fetch", req.URL.String(), opts)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	buf, err := callAwait(ctx, resp, "arrayBuffer")
	if err != nil {
		return nil, fmt.Errorf("fetch: body: %w", err)
	}
	arr := js.Global().Get("Uint8Array").New(buf)
	if arr.Length() > maxResponse {
		return nil, fmt.Errorf("fetch: a response of %d bytes", arr.Length())
	}
	body := make([]byte, arr.Length())
	js.CopyBytesToGo(body, arr)
	h := http.Header{}
	it := resp.Get("headers").Call("entries")
	for {
		n := it.Call("next")
		if n.Get("done").Bool() {
			break
		}
		kv := n.Get("value")
		h.Add(kv.Index(0).String(), kv.Index(1).String())
	}
	status := resp.Get("status").Int()
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, resp.Get("statusText").String()), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}, nil
}
