package plugintest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wsca/wsca/manager"
)

// RunBindings checks the manager's bindings over the plugin: concurrent
// writers through two managers sharing one store lose no binding, and a
// crash between the plugin's key and the binding (simulated: the intent
// and the key exist, the binding does not) is recovered at the next start,
// while an intent whose key was never made is dropped.
func RunBindings(t *testing.T, env manager.Env, fresh func(t *testing.T) manager.Plugin) {
	ctx := context.Background()
	newManager := func(t *testing.T, st manager.BindingStore, p manager.Plugin) *manager.Manager {
		t.Helper()
		m, err := manager.New(ctx, manager.Config{Store: st, Default: p.ID(), Auth: env.Auth, Progress: env.Progress}, p)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Run("ConcurrentWriters", func(t *testing.T) {
		p := fresh(t)
		st, err := manager.OpenDirStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		ms := []*manager.Manager{newManager(t, st, p), newManager(t, st, p)}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var made []manager.KID
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 2 {
					k, _, err := ms[i%2].Generate(ctx, manager.GenerateRequest{})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					made = append(made, k.KID)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		bs, err := st.Bindings(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != len(made) || len(made) != 12 {
			t.Fatalf("%d bindings for %d keys", len(bs), len(made))
		}
	})
	t.Run("CrashBetweenKeyAndBinding", func(t *testing.T) {
		p := fresh(t)
		st, err := manager.OpenDirStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if err := st.PutIntent(ctx, manager.Intent{Label: "crash-made", Plugin: p.ID(), Created: now}); err != nil {
			t.Fatal(err)
		}
		k, _, err := p.Generate(ctx, "crash-made", env)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.PutIntent(ctx, manager.Intent{Label: "crash-none", Plugin: p.ID(), Created: now}); err != nil {
			t.Fatal(err)
		}
		m := newManager(t, st, p) // the restart
		kid, _ := manager.Thumbprint(k.Public)
		b, err := st.Binding(ctx, kid)
		if err != nil || b.Handle != k.Handle || b.Plugin != p.ID() {
			t.Fatalf("recovered binding %+v, %v", b, err)
		}
		if in, _ := st.Intents(ctx); len(in) != 0 {
			t.Fatalf("%d intents left", len(in))
		}
		if _, ok := p.(manager.AssertionPlugin); ok {
			if _, _, err := m.SignAssertion(ctx, kid, make([]byte, 32)); err != nil {
				t.Fatal(err)
			}
		} else if _, _, err := m.Sign(ctx, kid, make([]byte, 32)); err != nil {
			t.Fatal(err)
		}
	})
}
