//go:build js && wasm

package jsbridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall/js"
)

// JSError is a JavaScript exception or a promise's rejection reason.
type JSError struct {
	Name, Message string
}

func (e *JSError) Error() string {
	return fmt.Sprintf("jsbridge: JavaScript %s: %s", e.Name, e.Message)
}

// ErrNotFunction: the host's object lacks a function the bridge calls.
var ErrNotFunction = errors.New("jsbridge: not a function")

func jsErrorOf(v js.Value) error {
	if v.Type() == js.TypeObject {
		name, msg := v.Get("name"), v.Get("message")
		if name.Type() == js.TypeString || msg.Type() == js.TypeString {
			n := "Error"
			if name.Type() == js.TypeString {
				n = name.String()
			}
			m := ""
			if msg.Type() == js.TypeString {
				m = msg.String()
			}
			return &JSError{Name: n, Message: m}
		}
	}
	if v.Type() == js.TypeString {
		return &JSError{Name: "Error", Message: v.String()}
	}
	return &JSError{Name: "Error", Message: v.Type().String()}
}

// call calls obj[method](args...) and turns a thrown exception into an
// error.
func call(obj js.Value, method string, args ...any) (v js.Value, err error) {
	if obj.Type() != js.TypeObject && obj.Type() != js.TypeFunction {
		return js.Undefined(), fmt.Errorf("%w: %s (no object)", ErrNotFunction, method)
	}
	fn := obj.Get(method)
	if fn.Type() != js.TypeFunction {
		return js.Undefined(), fmt.Errorf("%w: %s", ErrNotFunction, method)
	}
	defer func() {
		if r := recover(); r != nil {
			if je, ok := r.(js.Error); ok {
				err = jsErrorOf(je.Value)
				return
			}
			err = fmt.Errorf("jsbridge: %s: %v", method, r)
		}
	}()
	return obj.Call(method, args...), nil
}

// await waits for v when it is a thenable (without blocking the event
// loop: the calling goroutine parks, JavaScript runs); other values are
// returned as they are. A rejection becomes a *JSError.
func await(ctx context.Context, v js.Value) (js.Value, error) {
	if v.Type() != js.TypeObject || v.Get("then").Type() != js.TypeFunction {
		return v, nil
	}
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var once sync.Once
	var onOK, onErr js.Func
	release := func() { once.Do(func() { onOK.Release(); onErr.Release() }) }
	arg := func(a []js.Value) js.Value {
		if len(a) == 0 {
			return js.Undefined()
		}
		return a[0]
	}
	onOK = js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{v: arg(a)}
		release()
		return nil
	})
	onErr = js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{err: jsErrorOf(arg(a))}
		release()
		return nil
	})
	if _, err := call(v, "then", onOK, onErr); err != nil {
		release()
		return js.Undefined(), err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		// The functions stay until the promise settles.
		return js.Undefined(), ctx.Err()
	}
}

// callAwait calls obj[method](args...) and awaits its result.
func callAwait(ctx context.Context, obj js.Value, method string, args ...any) (js.Value, error) {
	v, err := call(obj, method, args...)
	if err != nil {
		return v, err
	}
	return await(ctx, v)
}

// bytesToJS copies b into a new Uint8Array.
func bytesToJS(b []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// bytesFromJS copies a Uint8Array; anything else is an error.
func bytesFromJS(v js.Value, max int) ([]byte, error) {
	if v.Type() != js.TypeObject || !v.InstanceOf(js.Global().Get("Uint8Array")) {
		return nil, errors.New("not a Uint8Array")
	}
	n := v.Get("byteLength").Int()
	if n > max {
		return nil, fmt.Errorf("more than %d bytes", max)
	}
	b := make([]byte, n)
	js.CopyBytesToGo(b, v)
	return b, nil
}

// toJSON returns JSON.stringify(v).
func toJSON(v js.Value) ([]byte, error) {
	s, err := call(js.Global().Get("JSON"), "stringify", v)
	if err != nil {
		return nil, err
	}
	if s.Type() != js.TypeString {
		return nil, errors.New("not JSON-serialisable")
	}
	return []byte(s.String()), nil
}

// fromJSON returns JSON.parse(b).
func fromJSON(b []byte) js.Value {
	return js.Global().Get("JSON").Call("parse", string(b))
}
