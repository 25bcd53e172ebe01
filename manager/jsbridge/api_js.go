//go:build js && wasm

package jsbridge

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall/js"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/softkey"
)

// maxData bounds the bytes a caller hands in (data to sign, a JWS).
const maxData = 1 << 20

// Export publishes globalThis.WSCAManager = {version, open(config)} on g
// and calls g.onWSCAManagerReady() when the host defined it.
func Export(g js.Value, version string) {
	open := js.FuncOf(func(_ js.Value, args []js.Value) any {
		cfg := arg(args, 0)
		return promise(func(ctx context.Context) (any, error) { return openManager(ctx, cfg) })
	})
	g.Set("WSCAManager", map[string]any{"version": version, "open": open})
	if g.Get("onWSCAManagerReady").Type() == js.TypeFunction {
		_, _ = call(g, "onWSCAManagerReady")
	}
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// newError makes the WSCAError a promise rejects with.
func newError(err error) js.Value {
	code, plugin := Code(err)
	e := js.Global().Get("Error").New(err.Error())
	e.Set("name", "WSCAError")
	e.Set("code", code)
	if plugin != "" {
		e.Set("plugin", plugin)
	}
	return e
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{manager.ErrInvalidInput}, a...)...)
}

// promise runs fn in a goroutine (a JavaScript callback must not block)
// and settles a new Promise with its result; a panic is an internal error.
func promise(fn func(ctx context.Context) (any, error)) js.Value {
	exec := js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(newError(fmt.Errorf("jsbridge: internal error: %v", r)))
				}
			}()
			v, err := fn(context.Background())
			if err != nil {
				reject.Invoke(newError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	p := js.Global().Get("Promise").New(exec)
	exec.Release() // the executor ran synchronously
	return p
}

// config is the data part of open's config.
type config struct {
	Plugins struct {
		Softkey *struct{}     `json:"softkey"`
		R2PS    *RemoteConfig `json:"r2ps"`
		FIDO2   *struct {
			RPID string `json:"rpId"`
		} `json:"fido2"`
	} `json:"plugins"`
	Defaults struct {
		Global     string            `json:"global"`
		Operations map[string]string `json:"operations"`
	} `json:"defaults"`
}

// bridge is one opened manager.
type bridge struct {
	m       *manager.Manager
	cb      *Callbacks
	soft    *softkey.Plugin
	r2ps    *Remote
	funcs   []js.Func
	closed  atomic.Bool
	closers []func()
}

func openManager(ctx context.Context, cfgV js.Value) (any, error) {
	if cfgV.Type() != js.TypeObject {
		return nil, invalid("open needs a config object")
	}
	store, err := NewStore(cfgV.Get("storage"))
	if err != nil {
		return nil, invalid("config.storage: %v", err)
	}
	kek, err := bytesFromJS(cfgV.Get("kek"), softkey.KEKSize)
	if err != nil || len(kek) != softkey.KEKSize {
		return nil, invalid("config.kek must be a Uint8Array of %d bytes", softkey.KEKSize)
	}
	defer clear(kek)
	var cfg config
	for _, f := range []struct {
		name string
		dst  any
	}{{"plugins", &cfg.Plugins}, {"defaults", &cfg.Defaults}} {
		v := cfgV.Get(f.name)
		if v.IsUndefined() || v.IsNull() {
			continue
		}
		b, err := toJSON(v)
		if err != nil {
			return nil, invalid("config.%s: %v", f.name, err)
		}
		if err := json.Unmarshal(b, f.dst); err != nil {
			return nil, invalid("config.%s: %v", f.name, err)
		}
	}
	b := &bridge{cb: NewCallbacks(cfgV.Get("callbacks"))}
	var plugins []manager.Plugin
	if cfg.Plugins.Softkey != nil {
		if b.soft, err = softkey.OpenStore(store, "softkey/", kek); err != nil {
			return nil, err
		}
		b.closers = append(b.closers, func() { b.soft.Close() })
		plugins = append(plugins, b.soft)
	}
	if cfg.Plugins.R2PS != nil {
		if b.r2ps, err = NewRemote(*cfg.Plugins.R2PS, store, kek); err != nil {
			return nil, err
		}
		b.closers = append(b.closers, func() { b.r2ps.Close() })
		plugins = append(plugins, b.r2ps)
	}
	if cfg.Plugins.FIDO2 != nil {
		p, err := newFIDO2(cfg.Plugins.FIDO2.RPID, prefixed{Store: store, prefix: "fido2/"})
		if err != nil {
			return nil, err
		}
		plugins = append(plugins, p)
	}
	ops := map[manager.Op]string{}
	for k, v := range cfg.Defaults.Operations {
		op, ok := opNames[k]
		if !ok {
			return nil, invalid("config.defaults.operations: no operation %q", k)
		}
		ops[op] = v
	}
	b.m, err = manager.New(ctx, manager.Config{
		Store: manager.NewKVStore(store), Default: cfg.Defaults.Global, OperationDefaults: ops,
		Auth: b.cb, Progress: b.cb,
		// Another context (a second tab, the extension's worker) may
		// share the storage: leave its fresh records alone.
		RecoverAfter: 10 * time.Minute,
	}, plugins...)
	if err != nil {
		b.close()
		return nil, err
	}
	return b.object(), nil
}

// opNames are the operation names of config.defaults.operations.
var opNames = map[string]manager.Op{
	"generate": manager.OpGenerate, "sign": manager.OpSign, "ecdh": manager.OpECDH,
	"publicKey": manager.OpPublicKey, "delete": manager.OpDelete, "properties": manager.OpProperties,
	"attestation": manager.OpAttestation, "migrate": manager.OpMigrate,
}

func (b *bridge) close() {
	for _, c := range b.closers {
		c()
	}
	b.closers = nil
}

// object is the Manager object handed to JavaScript.
func (b *bridge) object() js.Value {
	methods := map[string]func(ctx context.Context, args []js.Value) (any, error){
		"plugins":     b.plugins,
		"generate":    b.generate,
		"sign":        b.sign,
		"signJWS":     b.signJWS,
		"ecdh":        b.ecdh,
		"list":        b.list,
		"delete":      b.delete,
		"properties":  b.properties,
		"migrate":     b.migrate,
		"attestation": b.attestation,
		"enrol":       b.enrol,
		"close":       b.closeJS,
	}
	obj := map[string]any{}
	for name, fn := range methods {
		f := js.FuncOf(func(_ js.Value, args []js.Value) any {
			args = append([]js.Value(nil), args...)
			return promise(func(ctx context.Context) (any, error) {
				if b.closed.Load() {
					return nil, invalid("the manager is closed")
				}
				return fn(ctx, args)
			})
		})
		b.funcs = append(b.funcs, f)
		obj[name] = f
	}
	return js.ValueOf(obj)
}

func strs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func jwkOf(pub *ecdsa.PublicKey) (js.Value, error) {
	b, err := (&jose.JSONWebKey{Key: pub}).MarshalJSON()
	if err != nil {
		return js.Undefined(), err
	}
	return fromJSON(b), nil
}

func kidArg(v js.Value) (manager.KID, error) {
	if v.Type() != js.TypeString || !manager.KID(v.String()).Valid() {
		return "", invalid("a kid is an RFC 7638 thumbprint string")
	}
	return manager.KID(v.String()), nil
}

// jsonArg decodes an optional plain object into out.
func jsonArg(v js.Value, out any) error {
	if v.IsUndefined() || v.IsNull() {
		return nil
	}
	if v.Type() != js.TypeObject {
		return invalid("an options object is expected")
	}
	b, err := toJSON(v)
	if err != nil {
		return invalid("%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return invalid("%v", err)
	}
	return nil
}

func (b *bridge) plugins(context.Context, []js.Value) (any, error) {
	return strs(b.m.Plugins()), nil
}

func (b *bridge) generate(ctx context.Context, args []js.Value) (any, error) {
	var o struct {
		Plugin         string              `json:"plugin"`
		Requirement    manager.Requirement `json:"requirement"`
		Issuer         string              `json:"issuer"`
		CredentialType string              `json:"credentialType"`
	}
	if err := jsonArg(arg(args, 0), &o); err != nil {
		return nil, err
	}
	k, res, err := b.m.Generate(ctx, manager.GenerateRequest{Plugin: o.Plugin, Requirement: o.Requirement, Issuer: o.Issuer, CredentialType: o.CredentialType})
	if err != nil {
		return nil, err
	}
	jwk, err := jwkOf(k.Public)
	if err != nil {
		return nil, err
	}
	return map[string]any{"kid": string(k.KID), "plugin": k.Plugin, "handle": k.Handle, "publicJwk": jwk, "amr": strs(res.AMR)}, nil
}

func (b *bridge) sign(ctx context.Context, args []js.Value) (any, error) {
	kid, err := kidArg(arg(args, 0))
	if err != nil {
		return nil, err
	}
	data, err := bytesFromJS(arg(args, 1), maxData)
	if err != nil {
		return nil, invalid("data: %v", err)
	}
	d := sha256.Sum256(data)
	sig, res, err := b.m.Sign(ctx, kid, d[:])
	if errors.Is(err, manager.ErrAssertionOnly) {
		a, res, err := b.m.SignAssertion(ctx, kid, d[:])
		if err != nil {
			return nil, err
		}
		return map[string]any{"signature": bytesToJS(a.Signature), "format": "webauthn",
			"authenticatorData": bytesToJS(a.AuthenticatorData), "clientDataJSON": bytesToJS(a.ClientDataJSON),
			"plugin": res.Plugin, "amr": strs(res.AMR)}, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"signature": bytesToJS(sig), "format": "raw", "plugin": res.Plugin, "amr": strs(res.AMR)}, nil
}

func (b *bridge) signJWS(ctx context.Context, args []js.Value) (any, error) {
	kid, err := kidArg(arg(args, 0))
	if err != nil {
		return nil, err
	}
	var parts [2][]byte
	for i := range parts {
		v := arg(args, i+1)
		if v.Type() != js.TypeObject {
			return nil, invalid("signJWS takes a header and a payload object")
		}
		if parts[i], err = toJSON(v); err != nil {
			return nil, invalid("%v", err)
		}
		if len(parts[i]) > maxData {
			return nil, invalid("a JWS part of more than %d bytes", maxData)
		}
	}
	input, digest, err := jwsInput(parts[0], parts[1])
	if err != nil {
		return nil, err
	}
	sig, _, err := b.m.Sign(ctx, kid, digest)
	if err != nil {
		return nil, err
	}
	return jwsCompact(input, sig)
}

func (b *bridge) ecdh(ctx context.Context, args []js.Value) (any, error) {
	kid, err := kidArg(arg(args, 0))
	if err != nil {
		return nil, err
	}
	v := arg(args, 1)
	if v.Type() != js.TypeObject {
		return nil, invalid("the peer is a public JWK object")
	}
	raw, err := toJSON(v)
	if err != nil {
		return nil, invalid("%v", err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, invalid("peer JWK: %v", err)
	}
	pub, ok := jwk.Key.(*ecdsa.PublicKey)
	if !ok || !jwk.IsPublic() {
		return nil, invalid("the peer is not a public EC key")
	}
	peer, err := pub.ECDH()
	if err != nil || peer.Curve() != ecdh.P256() {
		return nil, invalid("the peer is not a P-256 key")
	}
	z, _, err := b.m.ECDH(ctx, kid, peer)
	if err != nil {
		return nil, err
	}
	return bytesToJS(z), nil
}

func (b *bridge) list(ctx context.Context, _ []js.Value) (any, error) {
	keys, err := b.m.List(ctx)
	var le *manager.ListError
	if err != nil && !errors.As(err, &le) {
		return nil, err
	}
	out := make([]any, 0, len(keys))
	for _, k := range keys {
		jwk, err := jwkOf(k.Public)
		if err != nil {
			return nil, err
		}
		out = append(out, map[string]any{"kid": string(k.KID), "plugin": k.Plugin, "handle": k.Handle,
			"publicJwk": jwk, "created": k.Created.UTC().Format(time.RFC3339)})
	}
	return out, nil
}

func (b *bridge) delete(ctx context.Context, args []js.Value) (any, error) {
	kid, err := kidArg(arg(args, 0))
	if err != nil {
		return nil, err
	}
	res, err := b.m.Delete(ctx, kid)
	if err != nil {
		return nil, err
	}
	return map[string]any{"amr": strs(res.AMR)}, nil
}

func (b *bridge) properties(ctx context.Context, args []js.Value) (any, error) {
	kid, err := kidArg(arg(args, 0))
	if err != nil {
		return nil, err
	}
	p, _, err := b.m.Properties(ctx, kid)
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return fromJSON(j), nil
}

func (b *bridge) migrate(ctx context.Context, args []js.Value) (any, error) {
	kid, err := kidArg(arg(args, 0))
	if err != nil {
		return nil, err
	}
	to := arg(args, 1)
	if to.Type() != js.TypeString {
		return nil, invalid("the target plugin is a string")
	}
	r, _, err := b.m.Migrate(ctx, kid, to.String())
	if err != nil {
		return nil, err
	}
	out := map[string]any{"migrated": r.Migrated, "reEnrollmentRequired": r.ReEnrollmentRequired}
	if r.Migrated {
		out["newKid"] = string(r.NewKey.KID)
	}
	return out, nil
}

func (b *bridge) attestation(ctx context.Context, args []js.Value) (any, error) {
	v := arg(args, 0)
	if v.Type() != js.TypeObject || !js.Global().Get("Array").Call("isArray", v).Bool() {
		return nil, invalid("attestation takes an array of kids")
	}
	kids := make([]manager.KID, v.Length())
	for i := range kids {
		k, err := kidArg(v.Index(i))
		if err != nil {
			return nil, err
		}
		kids[i] = k
	}
	nonce := arg(args, 1)
	if nonce.Type() != js.TypeString {
		return nil, invalid("the nonce is a string")
	}
	a, _, err := b.m.Attestation(ctx, kids, nonce.String())
	if err != nil {
		return nil, err
	}
	out := map[string]any{"format": a.Format}
	if a.JWT != "" {
		out["jwt"] = a.JWT
	}
	if len(a.Certificates) > 0 {
		certs := make([]any, len(a.Certificates))
		for i, c := range a.Certificates {
			certs[i] = bytesToJS(c)
		}
		out["certificates"] = certs
	}
	return out, nil
}

func (b *bridge) enrol(ctx context.Context, args []js.Value) (any, error) {
	plugin, code := arg(args, 0), arg(args, 1)
	if plugin.Type() != js.TypeString || code.Type() != js.TypeString {
		return nil, invalid("enrol takes a plugin id and an activation code")
	}
	if plugin.String() != "r2ps" || b.r2ps == nil {
		return nil, &manager.UnsupportedError{Plugin: plugin.String(), Op: "enrol"}
	}
	if err := b.r2ps.Enrol(ctx, code.String(), manager.Env{Auth: b.cb, Progress: b.cb}); err != nil {
		return nil, &manager.PluginError{Plugin: "r2ps", Op: "enrol", Err: err}
	}
	return map[string]any{}, nil
}

func (b *bridge) closeJS(context.Context, []js.Value) (any, error) {
	b.closed.Store(true)
	b.close()
	return js.Undefined(), nil
}
