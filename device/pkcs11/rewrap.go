//go:build cgo && !nopkcs11

package pkcs11

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"slices"

	p11 "github.com/miekg/pkcs11"

	"github.com/wsca/wsca/device"
)

var _ device.Rewrapper = (*Device)(nil)

// Rewrap implements device.Rewrapper. A blob under another wrapping key (or
// mechanism) is unwrapped into a temporary session object that is
// sensitive and extractable only so that C_WrapKey can take it, checked to
// hold the kid's key, wrapped under the current key and destroyed:
// C_UnwrapKey, the kid check (C_DeriveKey, C_GetAttributeValue,
// C_DestroyObject), C_WrapKey, C_DestroyObject. The cache is not touched:
// an entry for the old blob keeps serving refs that carry the old blob.
func (d *Device) Rewrap(ctx context.Context, ref device.Ref) ([]byte, error) {
	if err := d.validRef(ref); err != nil {
		return nil, err
	}
	if ref.Wrapped == nil {
		return nil, fmt.Errorf("%w: no blob to re-wrap", device.ErrInvalidBlob)
	}
	b, err := parseBlob(ref.Wrapped)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		w := g.w
		if w == nil {
			return device.ErrWrappedUnsupported
		}
		if bytes.Equal(b.wrapID, w.cur.id) && b.mech == w.mech {
			out = bytes.Clone(ref.Wrapped)
			return nil
		}
		wh, err := d.unwrappingKey(w, s, b.wrapID)
		if err != nil {
			return err
		}
		d.calls.Inc(CallUnwrapKey)
		h, err := d.lib.UnwrapKey(s, []*p11.Mechanism{p11.NewMechanism(b.mech.ckm(), nil)}, wh, b.wrapped,
			transitTemplate(ref, w.cur.trusted))
		if err != nil {
			if isCode(err, p11.CKR_UNWRAPPING_KEY_HANDLE_INVALID) || stale(err) {
				w.kmu.Lock()
				delete(w.unwrapH, string(b.wrapID))
				w.kmu.Unlock()
			}
			return d.unwrapError(s, err)
		}
		defer d.destroyQuiet(s, uint(h))
		pub, err := d.publicOf(s, h, ref.KID)
		if err != nil {
			return err
		}
		// The usage goes with the key: a derive-only key stays one.
		k, err := d.wrapWith(w, s, ref.Owner, h, pub, b.usage)
		out = k.Wrapped
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// transitTemplate is the temporary session object a blob is unwrapped into
// for re-wrapping: sensitive, extractable only so that C_WrapKey takes it
// (and only by a trusted key when the current wrapping key is trusted),
// for derivation only (the kid check); destroyed at once.
func transitTemplate(ref device.Ref, trusted bool) []*p11.Attribute {
	return []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_PRIVATE, true),
		p11.NewAttribute(p11.CKA_SENSITIVE, true),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, trusted),
		p11.NewAttribute(p11.CKA_SIGN, false),
		p11.NewAttribute(p11.CKA_DERIVE, true),
		p11.NewAttribute(p11.CKA_ID, ref.KID.Bytes()),
		p11.NewAttribute(p11.CKA_LABEL, string(ref.Owner)),
	}
}

// wrapWith wraps the private key h under the current wrapping key and
// returns the key with its blob; h stays (the caller destroys it).
func (d *Device) wrapWith(w *wrapState, s p11.SessionHandle, owner device.Owner, h p11.ObjectHandle, pub *ecdsa.PublicKey, usage keyUsage) (device.Key, error) {
	d.calls.Inc(CallWrapKey)
	wrapped, err := d.lib.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(w.mech.ckm(), nil)}, w.cur.h, h)
	if err != nil {
		return device.Key{}, err
	}
	kid, err := device.KIDOf(pub)
	if err != nil {
		return device.Key{}, err
	}
	b := appendBlob(make([]byte, 0, blobHeaderSize+len(wrapped)), blob{wrapID: w.cur.id, mech: w.mech, usage: usage, wrapped: wrapped})
	if _, err := parseBlob(b); err != nil {
		return device.Key{}, fmt.Errorf("pkcs11: the token wrapped a key this version cannot read back: %w", err)
	}
	return device.Key{KID: kid, Owner: owner, Public: pub, Wrapped: b}, nil
}

// WrapTokenKey implements device.Rewrapper: C_FindObjects for the private
// object, C_GetAttributeValue of CKA_EXTRACTABLE, CKA_WRAP_WITH_TRUSTED and
// CKA_SIGN (a key without it gets a derive-only blob),
// C_WrapKey, then a check that the blob unwraps to the kid's key (as a
// cache miss would: C_UnwrapKey and the kid check), whose object is
// destroyed. The token object is left for the caller to destroy once the
// blob is recorded.
func (d *Device) WrapTokenKey(ctx context.Context, ref device.Ref) ([]byte, error) {
	if err := d.validRef(ref); err != nil {
		return nil, err
	}
	if ref.Wrapped != nil {
		return nil, fmt.Errorf("%w: the key is wrapped already", device.ErrInvalidBlob)
	}
	var out []byte
	err := d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		w := g.w
		if w == nil {
			return device.ErrWrappedUnsupported
		}
		hs, err := d.find(s, p11.CKO_PRIVATE_KEY, refTemplate(ref)...)
		if err != nil {
			return err
		}
		switch len(hs) {
		case 0:
			return device.ErrKeyNotFound
		case 1:
		default:
			return fmt.Errorf("pkcs11: %d private objects with kid %s", len(hs), ref.KID)
		}
		d.calls.Inc(CallGetAttributeValue)
		a, err := d.lib.GetAttributeValue(s, hs[0], []*p11.Attribute{
			p11.NewAttribute(p11.CKA_EXTRACTABLE, nil),
			p11.NewAttribute(p11.CKA_WRAP_WITH_TRUSTED, nil),
			p11.NewAttribute(p11.CKA_SIGN, nil),
		})
		if err != nil {
			return err
		}
		isTrue := func(i int) bool { return len(a[i].Value) == 1 && a[i].Value[0] == 1 }
		switch {
		case !isTrue(0):
			return fmt.Errorf("%w: CKA_EXTRACTABLE is false", device.ErrNotExtractable)
		case isTrue(1) && !w.cur.trusted:
			return fmt.Errorf("%w: CKA_WRAP_WITH_TRUSTED and the wrapping key is not trusted", device.ErrNotExtractable)
		}
		d.calls.Inc(CallWrapKey)
		wrapped, err := d.lib.WrapKey(s, []*p11.Mechanism{p11.NewMechanism(w.mech.ckm(), nil)}, w.cur.h, hs[0])
		switch {
		case isCode(err, p11.CKR_KEY_UNEXTRACTABLE), isCode(err, p11.CKR_KEY_NOT_WRAPPABLE):
			return fmt.Errorf("%w: %v", device.ErrNotExtractable, err)
		case err != nil:
			return err
		}
		// The usage goes with the key: one the token would not sign
		// with (no CKA_SIGN) becomes a derive-only blob.
		usage := usageSignDerive
		if !isTrue(2) {
			usage = usageDerive
		}
		b := appendBlob(make([]byte, 0, blobHeaderSize+len(wrapped)), blob{wrapID: w.cur.id, mech: w.mech, usage: usage, wrapped: wrapped})
		if _, err := parseBlob(b); err != nil {
			return fmt.Errorf("pkcs11: the token wrapped a key this version cannot read back: %w", err)
		}
		// The blob must be the kid's key before anyone records it and
		// destroys the token object.
		d.calls.Inc(CallUnwrapKey)
		h, err := d.lib.UnwrapKey(s, []*p11.Mechanism{p11.NewMechanism(w.mech.ckm(), nil)}, w.cur.h, wrapped, unwrappedTemplate(ref, usage))
		if err != nil {
			return fmt.Errorf("pkcs11: the blob of a token key does not unwrap: %w", err)
		}
		defer d.destroyQuiet(s, uint(h))
		if _, err := d.publicOf(s, h, ref.KID); err != nil {
			return err
		}
		out = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CurrentBlobPrefix implements device.Rewrapper: the wrapping key id and
// mechanism of the blob's header (blob.go), which follow its version byte.
// The version says the key's usage, which a re-wrap keeps, so it is not
// part of what makes a blob current.
func (d *Device) CurrentBlobPrefix(ctx context.Context) ([]byte, error) {
	var out []byte
	err := d.do(ctx, func(g *generation, _ p11.SessionHandle) error {
		if g.w == nil {
			return device.ErrWrappedUnsupported
		}
		h := appendBlob(make([]byte, 0, blobHeaderSize), blob{wrapID: g.w.cur.id, mech: g.w.mech})
		out = h[1:]
		return nil
	})
	return out, err
}

// WrappingKeyOf implements device.Rewrapper.
func (d *Device) WrappingKeyOf(prefix []byte) ([]byte, error) {
	return blobWrappingKey(prefix)
}

// blobWrappingKey returns the wrapping key id a blob's header names, given
// the header without its version byte (as CurrentBlobPrefix).
func blobWrappingKey(prefix []byte) ([]byte, error) {
	if len(prefix) < blobHeaderSize-1 {
		return nil, fmt.Errorf("%w: a blob header of %d bytes", device.ErrInvalidBlob, len(prefix))
	}
	return bytes.Clone(prefix[:wrapIDSize]), nil
}

// WrappingKeys implements device.Rewrapper: every AES token key for
// unwrapping with a CKA_ID of the size blobs name, whatever its label.
func (d *Device) WrappingKeys(ctx context.Context) ([]device.WrappingKey, error) {
	var out []device.WrappingKey
	err := d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		out = out[:0]
		if g.w == nil {
			return device.ErrWrappedUnsupported
		}
		hs, err := d.find(s, p11.CKO_SECRET_KEY, p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
			p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_UNWRAP, true))
		if err != nil {
			return err
		}
		for _, h := range hs {
			d.calls.Inc(CallGetAttributeValue)
			a, err := d.lib.GetAttributeValue(s, h, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_ID, nil), p11.NewAttribute(p11.CKA_LABEL, nil)})
			if vanished(err) {
				continue
			}
			if err != nil {
				return err
			}
			if len(a[0].Value) != wrapIDSize {
				continue
			}
			out = append(out, device.WrappingKey{ID: a[0].Value, Label: string(a[1].Value), Current: bytes.Equal(a[0].Value, g.w.cur.id)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b device.WrappingKey) int { return bytes.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteWrappingKey implements device.Rewrapper. It refuses the key this
// device wraps under; another instance still configured with that key's
// label would create a new one under the label at its next start.
func (d *Device) DeleteWrappingKey(ctx context.Context, id []byte) error {
	if len(id) != wrapIDSize {
		return device.ErrKeyNotFound
	}
	return d.do(ctx, func(g *generation, s p11.SessionHandle) error {
		w := g.w
		if w == nil {
			return device.ErrWrappedUnsupported
		}
		if bytes.Equal(id, w.cur.id) {
			return device.ErrWrappingKeyInUse
		}
		hs, err := d.find(s, p11.CKO_SECRET_KEY, p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_AES),
			p11.NewAttribute(p11.CKA_TOKEN, true), p11.NewAttribute(p11.CKA_UNWRAP, true), p11.NewAttribute(p11.CKA_ID, id))
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return device.ErrKeyNotFound
		}
		w.kmu.Lock()
		delete(w.unwrapH, string(id))
		w.kmu.Unlock()
		for _, h := range hs {
			if err := d.destroy(s, h); err != nil && !stale(err) {
				return err
			}
		}
		d.log.WarnContext(ctx, "pkcs11: wrapping key deleted; blobs under it can no longer be unwrapped", "id", fmt.Sprintf("%x", id))
		return nil
	})
}

// destroyTokenCopy destroys the token objects of ref's kid and owner, if
// any: a wrapped key migrated from a token object whose destruction was
// interrupted after the blob was recorded (docs/wrapped-keys.md), so that
// destroying the key leaves no copy of it.
func (d *Device) destroyTokenCopy(g *generation, s p11.SessionHandle, ref device.Ref) error {
	g.forget(ref.KID)
	for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY} {
		hs, err := d.find(s, class, refTemplate(ref)...)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if err := d.destroy(s, h); err != nil && !stale(err) {
				return err
			}
		}
	}
	return nil
}
