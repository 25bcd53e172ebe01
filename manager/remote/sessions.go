package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/kv"
)

// KVSessions is a [SessionStore] in a kv.Store: the session, its key
// included, in one JWE (A256KW + A256GCM) under a 32-byte KEK, naming its
// kv key in the authenticated header so that a value moved from another
// key does not open.
type KVSessions struct {
	kv  kv.Store
	key string
	kek []byte
}

// ErrSessionDecrypt: a kept session does not open under the KEK.
var ErrSessionDecrypt = errors.New("remote: the kept session does not decrypt")

// NewKVSessions keeps the session under key in s, encrypted under kek
// (copied; Close zeroes the copy).
func NewKVSessions(s kv.Store, key string, kek []byte) (*KVSessions, error) {
	if s == nil || len(kek) != 32 || kv.CheckKey(key) != nil {
		return nil, fmt.Errorf("%w: remote: sessions need a store, a valid key and a 32-byte KEK", manager.ErrInvalidInput)
	}
	return &KVSessions{kv: s, key: key, kek: append([]byte(nil), kek...)}, nil
}

// Close zeroes the KEK.
func (k *KVSessions) Close() error { clear(k.kek); return nil }

type savedJSON struct {
	ID        string    `json:"id"`
	Key       []byte    `json:"key"`
	Task      string    `json:"task"`
	ExpiresAt time.Time `json:"exp"`
}

// Save implements SessionStore.
func (k *KVSessions) Save(ctx context.Context, s SavedSession) error {
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.A256KW, Key: k.kek, KeyID: k.key}, nil)
	if err != nil {
		return fmt.Errorf("remote: sessions: %w", err)
	}
	pt, err := json.Marshal(savedJSON(s))
	if err != nil {
		return err
	}
	defer clear(pt)
	obj, err := enc.Encrypt(pt)
	if err != nil {
		return fmt.Errorf("remote: sessions: %w", err)
	}
	c, err := obj.CompactSerialize()
	if err != nil {
		return fmt.Errorf("remote: sessions: %w", err)
	}
	if err := k.kv.Put(ctx, k.key, []byte(c)); err != nil {
		return fmt.Errorf("remote: sessions: %w", err)
	}
	return nil
}

// Load implements SessionStore.
func (k *KVSessions) Load(ctx context.Context) (SavedSession, bool, error) {
	b, err := k.kv.Get(ctx, k.key)
	if errors.Is(err, kv.ErrNotFound) {
		return SavedSession{}, false, nil
	}
	if err != nil {
		return SavedSession{}, false, fmt.Errorf("remote: sessions: %w", err)
	}
	obj, err := jose.ParseEncryptedCompact(string(b), []jose.KeyAlgorithm{jose.A256KW}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil || obj.Header.KeyID != k.key {
		return SavedSession{}, false, ErrSessionDecrypt
	}
	pt, err := obj.Decrypt(k.kek)
	if err != nil {
		return SavedSession{}, false, ErrSessionDecrypt
	}
	defer clear(pt)
	var s savedJSON
	if err := json.Unmarshal(pt, &s); err != nil {
		return SavedSession{}, false, ErrSessionDecrypt
	}
	return SavedSession(s), true, nil
}

// Forget implements SessionStore.
func (k *KVSessions) Forget(ctx context.Context) error {
	if err := k.kv.Delete(ctx, k.key); err != nil {
		return fmt.Errorf("remote: sessions: %w", err)
	}
	return nil
}
