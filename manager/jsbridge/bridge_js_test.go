//go:build js && wasm

package jsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"syscall/js"
	"testing"
	"time"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
	"github.com/wsca/wsca/manager/kv/kvtest"
	"github.com/wsca/wsca/r2ps/client"
)

// jsEval makes a JavaScript value from source (an expression).
func jsEval(src string) js.Value {
	return js.Global().Get("Function").New("return (" + src + ");").Invoke()
}

// mapStorage is the storage contract over a Map, asynchronous like a
// browser's storage.
const mapStorage = `(() => { const m = new Map(); return {
	m,
	async get(k) { return m.has(k) ? m.get(k) : null; },
	async create(k, v) { if (m.has(k)) return false; m.set(k, v); return true; },
	async put(k, v) { m.set(k, v); },
	async delete(k) { m.delete(k); },
	async list(p) { return [...m.keys()].filter((k) => k.startsWith(p)); },
}; })()`

func TestStoreContract(t *testing.T) {
	s, err := NewStore(jsEval(mapStorage))
	if err != nil {
		t.Fatal(err)
	}
	kvtest.RunStoreTests(t, s)
}

// The host's failures come back as errors: a throw, a rejection, an
// answer of the wrong type, a missing function.
func TestStoreHostErrors(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(jsEval(`{
		get(k) { if (k === "throw") throw new TypeError("boom"); if (k === "big") return "AAAA".repeat(87382); if (k === "num") return Promise.resolve(7); if (k === "bad64") return "%%%"; return Promise.reject(new RangeError("denied")); },
		create() { return Promise.resolve("yes"); },
		put() { return Promise.reject("a string"); },
		delete() {},
		list() { return Promise.resolve(["b/x", "a/1", 3, "a/0", "a/1", "a/\n"]); },
	}`))
	if err != nil {
		t.Fatal(err)
	}
	var je *JSError
	if _, err := s.Get(ctx, "throw"); !errors.As(err, &je) || je.Name != "TypeError" || je.Message != "boom" {
		t.Errorf("a throwing get: %v", err)
	}
	if _, err := s.Get(ctx, "reject"); !errors.As(err, &je) || je.Name != "RangeError" || je.Message != "denied" {
		t.Errorf("a rejecting get: %v", err)
	}
	if _, err := s.Get(ctx, "num"); !errors.Is(err, kv.ErrInvalid) {
		t.Errorf("get answering a number: %v, want kv.ErrInvalid", err)
	}
	if _, err := s.Get(ctx, "bad64"); !errors.Is(err, kv.ErrInvalid) {
		t.Errorf("get answering no base64: %v, want kv.ErrInvalid", err)
	}
	if _, err := s.Get(ctx, "big"); !errors.Is(err, kv.ErrInvalid) {
		t.Errorf("get answering more than kv.MaxValue: %v, want kv.ErrInvalid", err)
	}
	if err := s.Create(ctx, "k", []byte("v")); !errors.Is(err, kv.ErrInvalid) {
		t.Errorf("create answering a string: %v, want kv.ErrInvalid", err)
	}
	if err := s.Put(ctx, "k", []byte("v")); !errors.As(err, &je) || je.Message != "a string" {
		t.Errorf("put rejecting with a string: %v", err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Errorf("delete answering undefined: %v", err)
	}
	keys, err := s.List(ctx, "a/")
	if err != nil || strings.Join(keys, ",") != "a/0,a/1" {
		t.Errorf("List: %q %v, want the valid keys under a/, sorted, once", keys, err)
	}
	if _, err := NewStore(jsEval(`{ get() {}, create() {}, put() {}, delete() {} }`)); !errors.Is(err, ErrNotFunction) {
		t.Errorf("a storage without list: %v", err)
	}
}

// A promise that never settles leaves the caller when its context ends.
func TestAwaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := await(ctx, jsEval(`new Promise(() => {})`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("await: %v, want context.Canceled", err)
	}
}

func TestCallbacks(t *testing.T) {
	ctx := context.Background()
	cb := NewCallbacks(jsEval(`{
		requestPIN(req) {
			if (req.reason === "register") return null;
			if (req.reason === "change_old") return Promise.reject(new Error("closed"));
			if (req.reason === "change_new") return 1234;
			return Promise.resolve(req.plugin + ":" + req.displayName + ":" + req.attempts);
		},
		webauthn(req) { return req.create ? null : { id: "cred", challenge: req.challenge, rp: req.rpId }; },
		progress(p) { throw new Error("ignored"); },
	}`))
	env := manager.Env{Auth: cb, Progress: cb}
	s, err := env.AskPIN(ctx, "r2ps", "HSM", manager.ReasonUnlock)
	if err != nil || string(s.Bytes()) != "r2ps:HSM:-1" {
		t.Fatalf("AskPIN: %v", err)
	}
	if _, err := env.AskPIN(ctx, "r2ps", "HSM", manager.ReasonRegister); !errors.Is(err, manager.ErrAuthCancelled) {
		t.Errorf("requestPIN answering null: %v, want ErrAuthCancelled", err)
	}
	var je *JSError
	if _, err := env.AskPIN(ctx, "r2ps", "HSM", manager.ReasonChangeOld); !errors.As(err, &je) {
		t.Errorf("requestPIN rejecting: %v", err)
	}
	if _, err := env.AskPIN(ctx, "r2ps", "HSM", manager.ReasonChangeNew); !errors.Is(err, manager.ErrInvalidInput) {
		t.Errorf("requestPIN answering a number: %v, want ErrInvalidInput", err)
	}
	b, err := cb.RequestWebAuthnAssertion(ctx, manager.WebAuthnRequest{RPID: "example.org", Challenge: []byte{1, 2, 3}})
	var got map[string]string
	if err != nil || json.Unmarshal(b, &got) != nil || got["challenge"] != "AQID" || got["rp"] != "example.org" || got["id"] != "cred" {
		t.Fatalf("webauthn: %s %v", b, err)
	}
	if _, err := cb.RequestWebAuthnAssertion(ctx, manager.WebAuthnRequest{Create: true}); !errors.Is(err, manager.ErrAuthCancelled) {
		t.Errorf("webauthn answering null: %v, want ErrAuthCancelled", err)
	}
	env.Report(manager.Progress{Plugin: "p"}) // a throwing progress callback is ignored
	none := NewCallbacks(js.Undefined())
	if _, err := none.RequestPIN(ctx, manager.PINRequest{}); !errors.Is(err, manager.ErrAuthRequired) {
		t.Errorf("no callbacks: %v, want ErrAuthRequired", err)
	}
}

// A rejected promise of the API is a WSCAError with the code (and the
// plugin) of the Go error.
func TestNewError(t *testing.T) {
	e := newError(&manager.PluginError{Plugin: "softkey", Op: manager.OpSign, Err: manager.ErrKeyNotFound})
	if !e.InstanceOf(js.Global().Get("Error")) || e.Get("name").String() != "WSCAError" ||
		e.Get("code").String() != CodeKeyNotFound || e.Get("plugin").String() != "softkey" {
		t.Fatalf("error %v", e)
	}
	if e := newError(errors.New("x")); !e.Get("plugin").IsUndefined() || e.Get("code").String() != CodeInternal {
		t.Fatalf("error %v", e)
	}
}

// Export publishes WSCAManager and calls onWSCAManagerReady; open
// resolves with a Manager over the host's storage.
func TestExportAndOpen(t *testing.T) {
	g := jsEval(`{ ready: 0, onWSCAManagerReady() { this.ready++; } }`)
	Export(g, "v-test")
	if g.Get("ready").Int() != 1 || g.Get("WSCAManager").Get("version").String() != "v-test" {
		t.Fatal("not published")
	}
	cfg := jsEval(`{ storage: ` + mapStorage + `, kek: new Uint8Array(32), plugins: { softkey: {} }, defaults: { global: "softkey", operations: { sign: "softkey" } } }`)
	m, err := await(context.Background(), g.Get("WSCAManager").Call("open", cfg))
	if err != nil {
		t.Fatal(err)
	}
	k, err := await(context.Background(), m.Call("generate"))
	if err != nil || !manager.KID(k.Get("kid").String()).Valid() {
		t.Fatalf("generate: %v", err)
	}
	bad := jsEval(`{ storage: ` + mapStorage + `, kek: new Uint8Array(32), defaults: { operations: { nope: "softkey" } } }`)
	_, err = await(context.Background(), g.Get("WSCAManager").Call("open", bad))
	var je *JSError
	if !errors.As(err, &je) || je.Name != "WSCAError" {
		t.Fatalf("open with an unknown operation: %v", err)
	}
}

// The fetch transport: method, content type and body out; status, content
// type and body back; a rejection, an oversized body (announced or not) and
// an ended context are errors.
func TestFetchTransport(t *testing.T) {
	old := js.Global().Get("fetch")
	defer js.Global().Set("fetch", old)
	js.Global().Set("fetch", jsEval(`async (url, o) => {
		if (url.endsWith("/down")) throw new TypeError("fetch failed");
		if (url.endsWith("/big")) return new Response(new Uint8Array(11));
		if (url.endsWith("/announced")) return new Response("x", { headers: { "Content-Length": "11" } });
		if (url.endsWith("/endless")) return new Response(new ReadableStream({
			pull(c) { c.enqueue(new Uint8Array(1024)); },
			cancel() { globalThis.endlessCancelled = true; },
		}));
		if (url.endsWith("/hang")) return new Promise((_, reject) => o.signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))));
		const body = o.body ? new TextDecoder().decode(o.body) : "";
		return new Response(o.method + " " + o.headers.get("content-type") + " " + body, { status: 201, headers: { "Content-Type": "text/x" } });
	}`))
	tr := newTransport()
	ctx := context.Background()
	resp, err := tr.Do(ctx, &client.HTTPRequest{Method: "POST", URL: "http://h/x", ContentType: "application/x", Body: []byte("hello"), MaxResponse: 100})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || string(resp.Body) != "POST application/x hello" || resp.ContentType != "text/x" {
		t.Fatalf("%d %q %q", resp.Status, resp.Body, resp.ContentType)
	}
	if resp, err := tr.Do(ctx, &client.HTTPRequest{Method: "GET", URL: "http://h/x", MaxResponse: 100}); err != nil || string(resp.Body) != "GET null " {
		t.Errorf("a GET: %v %q", err, resp.Body)
	}
	var je *JSError
	if _, err := tr.Do(ctx, &client.HTTPRequest{Method: "GET", URL: "http://h/down", MaxResponse: 10}); !errors.As(err, &je) || je.Message != "fetch failed" {
		t.Errorf("a rejected fetch: %v", err)
	}
	for _, u := range []string{"http://h/big", "http://h/announced"} {
		if _, err := tr.Do(ctx, &client.HTTPRequest{Method: "GET", URL: u, MaxResponse: 10}); !errors.Is(err, client.ErrResponseTooLarge) {
			t.Errorf("%s: %v", u, err)
		}
	}
	if resp, err := tr.Do(ctx, &client.HTTPRequest{Method: "GET", URL: "http://h/big", MaxResponse: 11}); err != nil || len(resp.Body) != 11 {
		t.Errorf("a body at the bound: %v", err)
	}
	// A body with no length that never ends is cut at the bound, and its
	// stream cancelled, not read to the end.
	if _, err := tr.Do(ctx, &client.HTTPRequest{Method: "GET", URL: "http://h/endless", MaxResponse: 4096}); !errors.Is(err, client.ErrResponseTooLarge) {
		t.Errorf("an endless body: %v", err)
	}
	if !js.Global().Get("endlessCancelled").Truthy() {
		t.Error("the endless body's stream was not cancelled")
	}
	short := fetchTransport{timeout: time.Millisecond}
	if _, err := short.Do(ctx, &client.HTTPRequest{Method: "GET", URL: "http://h/hang", MaxResponse: 10}); err == nil {
		t.Error("a fetch past the timeout succeeded")
	}
}
