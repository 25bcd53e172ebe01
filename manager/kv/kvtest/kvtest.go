// Package kvtest checks a kv.Store against the contract of package kv.
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/wsca/wsca/manager/kv"
)

// RunStoreTests checks any [kv.Store] against this package's contract (the
// JavaScript store runs it under Node, the directory store natively).
func RunStoreTests(t *testing.T, s kv.Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Get(ctx, "t/missing"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get missing: %v, want kv.ErrNotFound", err)
	}
	if err := s.Create(ctx, "t/a", []byte("1")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Create(ctx, "t/a", []byte("2")); !errors.Is(err, kv.ErrExists) {
		t.Fatalf("Create twice: %v, want kv.ErrExists", err)
	}
	if v, err := s.Get(ctx, "t/a"); err != nil || string(v) != "1" {
		t.Fatalf("Get after a refused Create: %q %v", v, err)
	}
	if err := s.Put(ctx, "t/a", []byte("3")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if v, err := s.Get(ctx, "t/a"); err != nil || string(v) != "3" {
		t.Fatalf("Get after Put: %q %v", v, err)
	}
	if err := s.Put(ctx, "t/b/../x", []byte{}); err != nil {
		t.Fatalf("Put of a path-like key: %v", err)
	}
	if err := s.Put(ctx, "u/other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	keys, err := s.List(ctx, "t/")
	if err != nil || !slices.Equal(keys, []string{"t/a", "t/b/../x"}) {
		t.Fatalf("List: %q %v", keys, err)
	}
	if err := s.Delete(ctx, "t/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "t/a"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if _, err := s.Get(ctx, "t/a"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	for _, bad := range []string{"", "a\nb", string(make([]byte, kv.MaxKey+1))} {
		if err := s.Put(ctx, bad, nil); !errors.Is(err, kv.ErrInvalid) {
			t.Errorf("Put(%q): %v, want kv.ErrInvalid", bad, err)
		}
	}
	if err := s.Put(ctx, "t/big", make([]byte, kv.MaxValue+1)); !errors.Is(err, kv.ErrInvalid) {
		t.Errorf("Put of an oversized value: %v, want kv.ErrInvalid", err)
	}
	// Of concurrent creators of one key, exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Create(ctx, "t/race", []byte(fmt.Sprint(i)))
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.Is(err, kv.ErrExists) {
				t.Errorf("racing Create: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d racing creators won, want 1", won)
	}
}
