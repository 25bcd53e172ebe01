package atomicfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wsca/wsca/internal/atomicfile"
)

func TestCreateReplaceRemove(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.json")
	if err := atomicfile.Create(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Create(p, []byte("two"), 0o600); !errors.Is(err, atomicfile.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("after a refused create: %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := atomicfile.Replace(p, []byte("three"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "three" {
		t.Fatalf("after replace: %q", b)
	}
	if err := atomicfile.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Remove(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("second remove: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}

// Of many concurrent creates of one name exactly one wins, and the file
// holds the winner's bytes whole.
func TestCreateRace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []string
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := string(rune('a'+i)) + "-payload"
			if err := atomicfile.Create(p, []byte(data), 0o600); err == nil {
				mu.Lock()
				won = append(won, data)
				mu.Unlock()
			} else if !errors.Is(err, atomicfile.ErrExists) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, _ := os.ReadFile(p)
	if len(won) != 1 || string(b) != won[0] {
		t.Fatalf("winners %v, file %q", won, b)
	}
}
