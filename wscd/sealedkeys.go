package wscd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/wsca/wsca/store"
)

// PurposeR2PSSigningSealed names the sealed software key that signs R2PS
// responses when the operator does not keep that key in the HSM.
const PurposeR2PSSigningSealed = "r2ps-signing-sealed"

// SealedSigningKey returns a P-256 signing key for purpose that lives in
// memory and, between starts, in the store sealed by the HSM-derived
// sealing key (additional data: the purpose). The first instance makes it;
// every instance sharing the store loads the same key. It is for keys whose
// use is frequent and whose compromise needs the server's memory (or the
// HSM and the store together): the R2PS response-signing key. Wallet keys
// never take this path.
func (s *ServerKeys) SealedSigningKey(ctx context.Context, purpose string) (*ecdsa.PrivateKey, error) {
	sl, err := s.Sealer(ctx)
	if err != nil {
		return nil, err
	}
	purpose = s.prefix + purpose
	for range 2 {
		sealed, err := s.st.GetServerSecret(ctx, purpose)
		if err == nil {
			raw, err := sl.Open(sealed, []byte(purpose))
			if err != nil {
				return nil, fmt.Errorf("%w: sealed key %q does not open", ErrUnavailable, purpose)
			}
			defer clear(raw)
			k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
			if err != nil {
				return nil, fmt.Errorf("%w: sealed key %q: %v", ErrUnavailable, purpose, err)
			}
			return k, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, storeErr(err)
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("wscd: sealed key: %w", err)
		}
		raw, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("wscd: sealed key: %w", err)
		}
		sealed, err = sl.Seal(raw, []byte(purpose))
		clear(raw)
		if err != nil {
			return nil, err
		}
		// Another instance may record its key first: then load theirs.
		err = s.st.PutServerSecret(ctx, purpose, sealed, s.now().UTC())
		if err != nil && !errors.Is(err, store.ErrExists) {
			return nil, storeErr(err)
		}
		if err == nil {
			s.log.InfoContext(ctx, "sealed server key generated", "purpose", purpose)
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: sealed key %q not recorded", ErrUnavailable, purpose)
}
