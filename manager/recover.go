package manager

import (
	"context"
	"errors"
	"fmt"
)

// Recover finishes what an interrupted process left in the store: intents
// whose key was made are bound and the others dropped; deletions are
// completed; migrations are completed when the target holds the key and
// undone otherwise. Records younger than Config.RecoverAfter are left
// alone. Records of plugins that are not registered wait for them.
func (m *Manager) Recover(ctx context.Context) error {
	cutoff := m.cfg.Now().Add(-m.cfg.RecoverAfter)
	claims, err := m.cfg.Store.Claims(ctx)
	if err != nil {
		return err
	}
	migrating := map[string]bool{}
	var errs []error
	for _, c := range claims {
		if c.Kind == ClaimMigrate {
			migrating[c.Label] = true
		}
		if c.Created.After(cutoff) {
			continue
		}
		switch c.Kind {
		case ClaimDelete:
			errs = append(errs, m.settleDelete(ctx, c))
		case ClaimMigrate:
			_, err := m.settleMigration(ctx, c)
			errs = append(errs, err)
		default:
			errs = append(errs, fmt.Errorf("%w: claim of kind %q", ErrCorruptBinding, c.Kind))
		}
	}
	intents, err := m.cfg.Store.Intents(ctx)
	if err != nil {
		return err
	}
	for _, in := range intents {
		if migrating[in.Label] || in.Migrate != "" || in.Created.After(cutoff) {
			continue
		}
		_, err := m.settleIntent(ctx, in)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// settleIntent binds the key made under in.Label if there is one, and
// drops the intent. It reports whether a key was bound.
func (m *Manager) settleIntent(ctx context.Context, in Intent) (bool, error) {
	p, err := m.plugin(in.Plugin)
	if err != nil {
		return false, nil // wait for the plugin to be registered
	}
	pk, found, err := p.Lookup(ctx, in.Label, m.env())
	if err != nil {
		return false, wrap(p, "recover", err)
	}
	if found {
		if _, err := m.bind(ctx, p, pk, in.Label); err != nil && !errors.Is(err, ErrKIDCollision) {
			return false, err
		}
	}
	if err := m.cfg.Store.DeleteIntent(ctx, in.Label); err != nil && !errors.Is(err, ErrNotFound) {
		return found, err
	}
	return found, nil
}

// settleDelete completes an interrupted deletion: the plugin's delete is
// idempotent, so it runs again.
func (m *Manager) settleDelete(ctx context.Context, c Claim) error {
	b, err := m.cfg.Store.Binding(ctx, c.KID)
	if errors.Is(err, ErrNotFound) {
		return ignoreNotFound(m.cfg.Store.Release(ctx, c.KID))
	}
	if err != nil {
		return err
	}
	p, err := m.plugin(b.Plugin)
	if err != nil {
		return nil
	}
	if _, err := p.Delete(ctx, b.Handle, m.env()); err != nil {
		return wrap(p, OpDelete, err)
	}
	m.bound.Delete(c.KID)
	if err := ignoreNotFound(m.cfg.Store.Unbind(ctx, c.KID)); err != nil {
		return err
	}
	return ignoreNotFound(m.cfg.Store.Release(ctx, c.KID))
}

// settleMigration brings a migration claim to an end, from any point the
// migration may have stopped at, and reports whether the key moved:
//   - the intent is there: the target is asked for the key made under the
//     label; found, the binding moves to it; not found, the migration is
//     undone (the key stays where it was);
//   - the binding names the target: the source copy is deleted;
//   - the binding still names the source: nothing moved.
//
// The claim is released at the end.
func (m *Manager) settleMigration(ctx context.Context, c Claim) (bool, error) {
	intents, err := m.cfg.Store.Intents(ctx)
	if err != nil {
		return false, err
	}
	for _, in := range intents {
		if in.Label != c.Label {
			continue
		}
		dst, err := m.plugin(in.Plugin)
		if err != nil {
			return false, nil // wait for the plugin
		}
		pk, found, err := dst.Lookup(ctx, in.Label, m.env())
		if err != nil {
			return false, wrap(dst, "recover", err)
		}
		if found {
			kid, err := Thumbprint(pk.Public)
			if err != nil || kid != c.KID {
				_, _ = dst.Delete(ctx, pk.Handle, m.env())
				found = false
			} else {
				old, err := m.cfg.Store.Binding(ctx, c.KID)
				if err != nil {
					return false, err
				}
				nb := Binding{KID: c.KID, Plugin: dst.ID(), Handle: pk.Handle, Label: in.Label, Created: old.Created}
				if err := m.cfg.Store.Rebind(ctx, nb); err != nil {
					return false, err
				}
				m.bound.Store(c.KID, nb)
			}
		}
		if err := ignoreNotFound(m.cfg.Store.DeleteIntent(ctx, in.Label)); err != nil {
			return false, err
		}
		break
	}
	b, err := m.cfg.Store.Binding(ctx, c.KID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	moved := err == nil && !(b.Plugin == c.SourcePlugin && b.Handle == c.SourceHandle)
	if moved {
		src, err := m.plugin(c.SourcePlugin)
		if err != nil {
			return true, nil // the source copy waits for its plugin
		}
		if _, err := src.Delete(ctx, c.SourceHandle, m.env()); err != nil {
			return true, wrap(src, OpMigrate, err)
		}
	}
	return moved, ignoreNotFound(m.cfg.Store.Release(ctx, c.KID))
}

func ignoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
