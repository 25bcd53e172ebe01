package manager

import (
	"context"
	"errors"
	"fmt"
)

// Migrate moves the key to the target plugin, keeping its kid: the source
// exports it, the target imports it, the binding moves and the source copy
// is deleted. When the source cannot export the key (it is not exportable,
// as in any hardware WSCD) or the target cannot import, nothing changes and
// the result says ReEnrollmentRequired: the credential must be issued again
// to a new key made on the target. That is a value, not an error.
func (m *Manager) Migrate(ctx context.Context, kid KID, to string) (MigrationResult, Result, error) {
	t, err := m.resolve(ctx, kid, OpMigrate)
	if err != nil {
		return MigrationResult{}, Result{}, err
	}
	dst, err := m.plugin(to)
	if err != nil {
		return MigrationResult{}, Result{}, err
	}
	if dst.ID() == t.p.ID() {
		return MigrationResult{}, Result{}, fmt.Errorf("%w: the key is on %q already", ErrInvalidInput, to)
	}
	reenrol := MigrationResult{ReEnrollmentRequired: true, OldKID: kid}
	exp, canExport := t.p.(ExportingPlugin)
	imp, canImport := dst.(ImportingPlugin)
	if !canExport || !canImport {
		return reenrol, Result{Plugin: dst.ID()}, nil
	}
	props, err := t.p.Properties(ctx, t.handle, m.env())
	if err != nil {
		return MigrationResult{}, Result{}, wrap(t.p, OpMigrate, err)
	}
	if !props.Exportable {
		return reenrol, Result{Plugin: dst.ID()}, nil
	}
	if !t.bound {
		// Bind it first so that the move is recorded like any other.
		pub, err := t.p.PublicKey(ctx, t.handle, m.env())
		if err != nil {
			return MigrationResult{}, Result{}, wrap(t.p, OpMigrate, err)
		}
		if _, err := m.bind(ctx, t.p, PluginKey{Handle: t.handle, Public: pub}, ""); err != nil {
			return MigrationResult{}, Result{}, err
		}
	}
	label := newLabel()
	now := m.cfg.Now().UTC()
	claim := Claim{KID: kid, Kind: ClaimMigrate, Created: now, Label: label, SourcePlugin: t.p.ID(), SourceHandle: t.handle}
	if err := m.cfg.Store.Claim(ctx, claim); err != nil {
		if errors.Is(err, ErrExists) {
			return MigrationResult{}, Result{}, ErrBusy
		}
		return MigrationResult{}, Result{}, err
	}
	if err := m.cfg.Store.PutIntent(ctx, Intent{Label: label, Plugin: dst.ID(), Created: now, Migrate: kid}); err != nil {
		_ = m.cfg.Store.Release(context.WithoutCancel(ctx), kid)
		return MigrationResult{}, Result{}, err
	}
	env := m.env()
	ek, err := exp.Export(ctx, t.handle, env)
	if err != nil {
		_, _ = m.settleMigration(context.WithoutCancel(ctx), claim)
		if errors.Is(err, ErrUnsupported) {
			return reenrol, Result{Plugin: dst.ID()}, nil
		}
		return MigrationResult{}, Result{}, wrap(t.p, OpMigrate, err)
	}
	pk, amr, err := imp.Import(ctx, ek, label, env)
	ek.Wipe()
	if err != nil {
		_, _ = m.settleMigration(context.WithoutCancel(ctx), claim)
		if errors.Is(err, ErrUnsupported) {
			return reenrol, Result{Plugin: dst.ID()}, nil
		}
		return MigrationResult{}, Result{}, wrap(dst, OpMigrate, err)
	}
	if got, err := Thumbprint(pk.Public); err != nil || got != kid {
		_, _ = dst.Delete(context.WithoutCancel(ctx), pk.Handle, env)
		_, _ = m.settleMigration(context.WithoutCancel(ctx), claim)
		return MigrationResult{}, Result{}, wrap(dst, OpMigrate, ErrKeyMismatch)
	}
	moved, err := m.settleMigration(ctx, claim)
	if err != nil {
		return MigrationResult{}, Result{}, err
	}
	if !moved {
		// Another process's Recover took this migration for an
		// interrupted one and undid it (Config.RecoverAfter too short
		// for processes sharing the store): the key stays where it was,
		// and the copy imported here goes.
		_, _ = dst.Delete(context.WithoutCancel(ctx), pk.Handle, env)
		return MigrationResult{}, Result{}, fmt.Errorf("%w: the migration was undone by another process's recovery", ErrBusy)
	}
	return MigrationResult{Migrated: true, NewKey: Key{KID: kid, Plugin: dst.ID(), Handle: pk.Handle, Public: pk.Public, Created: pk.Created}},
		Result{Plugin: dst.ID(), AMR: amr}, nil
}
