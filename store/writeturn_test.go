package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestSQLiteWriteTurns: on SQLite a transaction waits for its turn in the
// process, not in SQLite's busy handler (which serves whichever waiter
// polls first and gives up with SQLITE_BUSY after the busy timeout). A
// waiter whose context ends gets the context's error at once, and the
// next transaction begins as soon as the one before it ends.
func TestSQLiteWriteTurns(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "turns.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tx, done, err := s.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := s.begin(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second transaction while the first is open: %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the waiter came back after %v: it waited in SQLite, not for its turn", d)
	}
	// Waiters are served in the order they came: SQLite's busy handler
	// backs off longer the longer a waiter has waited, so there the first
	// to come tends to be the last served.
	const waiters = 3
	order := make(chan int, waiters)
	errs := make(chan error, waiters)
	for i := range waiters {
		go func() {
			tx, done, err := s.begin(ctx)
			if err != nil {
				errs <- err
				return
			}
			order <- i
			time.Sleep(5 * time.Millisecond)
			errs <- tx.Rollback()
			done()
		}()
		time.Sleep(100 * time.Millisecond) // the next one comes later
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	done()
	for range waiters {
		if err := <-errs; err != nil {
			t.Fatalf("a waiting transaction: %v", err)
		}
	}
	for want := range waiters {
		if got := <-order; got != want {
			t.Fatalf("waiter %d began as number %d: not in the order they came", got, want)
		}
	}
}
