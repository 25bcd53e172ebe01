//go:build js && wasm

package jsbridge

import (
	"context"
	"fmt"
	"syscall/js"

	"github.com/wsca/wsca/manager"
)

// Callbacks are the manager's AuthCallback and ProgressCallback over the
// host's callbacks object: requestPIN({plugin, displayName, reason,
// attempts}) -> Promise<string|null> (null: the user cancelled),
// webauthn(request) -> Promise<object>, progress?({plugin, op, stage,
// step, total}).
type Callbacks struct{ obj js.Value }

// NewCallbacks wraps the host's callbacks object (which may be undefined:
// then every PIN request is ErrAuthRequired).
func NewCallbacks(obj js.Value) *Callbacks { return &Callbacks{obj: obj} }

func (c *Callbacks) has(name string) bool {
	return c.obj.Type() == js.TypeObject && c.obj.Get(name).Type() == js.TypeFunction
}

// RequestPIN implements manager.AuthCallback.
func (c *Callbacks) RequestPIN(ctx context.Context, req manager.PINRequest) (*manager.Secret, error) {
	if !c.has("requestPIN") {
		return nil, manager.ErrAuthRequired
	}
	arg := map[string]any{"plugin": req.Plugin, "displayName": req.DisplayName, "reason": string(req.Reason), "attempts": req.Attempts}
	v, err := callAwait(ctx, c.obj, "requestPIN", arg)
	if err != nil {
		return nil, fmt.Errorf("jsbridge: requestPIN: %w", err)
	}
	switch v.Type() {
	case js.TypeNull, js.TypeUndefined:
		return nil, manager.ErrAuthCancelled
	case js.TypeString:
		return manager.NewSecret([]byte(v.String())), nil
	}
	return nil, fmt.Errorf("%w: requestPIN returned a %s", manager.ErrInvalidInput, v.Type())
}

// RequestWebAuthnAssertion implements manager.AuthCallback: the request's
// JSON goes to webauthn(), whose answer comes back as JSON. A null answer
// is ErrAuthCancelled.
func (c *Callbacks) RequestWebAuthnAssertion(ctx context.Context, req manager.WebAuthnRequest) ([]byte, error) {
	if !c.has("webauthn") {
		return nil, manager.ErrAuthRequired
	}
	b, err := req.MarshalJSON()
	if err != nil {
		return nil, err
	}
	v, err := callAwait(ctx, c.obj, "webauthn", fromJSON(b))
	if err != nil {
		return nil, fmt.Errorf("jsbridge: webauthn: %w", err)
	}
	if v.Type() == js.TypeNull || v.Type() == js.TypeUndefined {
		return nil, manager.ErrAuthCancelled
	}
	out, err := toJSON(v)
	if err != nil {
		return nil, fmt.Errorf("%w: webauthn answer: %v", manager.ErrInvalidInput, err)
	}
	return out, nil
}

// OnProgress implements manager.ProgressCallback; a throwing callback is
// ignored.
func (c *Callbacks) OnProgress(p manager.Progress) {
	if !c.has("progress") {
		return
	}
	_, _ = call(c.obj, "progress", map[string]any{"plugin": p.Plugin, "op": string(p.Op), "stage": string(p.Stage), "step": p.Step, "total": p.Total})
}

var (
	_ manager.AuthCallback     = (*Callbacks)(nil)
	_ manager.ProgressCallback = (*Callbacks)(nil)
)
