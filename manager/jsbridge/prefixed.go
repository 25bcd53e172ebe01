package jsbridge

import (
	"context"
	"strings"

	"github.com/wsca/wsca/manager/kv"
)

// prefixed is a kv.Store that keeps its keys under prefix in another; a
// key is checked before the prefix makes any key look valid.
type prefixed struct {
	kv.Store
	prefix string
}

func (p prefixed) Get(ctx context.Context, key string) ([]byte, error) {
	if err := kv.CheckKey(key); err != nil {
		return nil, err
	}
	return p.Store.Get(ctx, p.prefix+key)
}

func (p prefixed) Create(ctx context.Context, key string, value []byte) error {
	if err := kv.CheckKey(key); err != nil {
		return err
	}
	return p.Store.Create(ctx, p.prefix+key, value)
}

func (p prefixed) Put(ctx context.Context, key string, value []byte) error {
	if err := kv.CheckKey(key); err != nil {
		return err
	}
	return p.Store.Put(ctx, p.prefix+key, value)
}

func (p prefixed) Delete(ctx context.Context, key string) error {
	if err := kv.CheckKey(key); err != nil {
		return err
	}
	return p.Store.Delete(ctx, p.prefix+key)
}

func (p prefixed) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := p.Store.List(ctx, p.prefix+prefix)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		keys[i] = strings.TrimPrefix(k, p.prefix)
	}
	return keys, nil
}
