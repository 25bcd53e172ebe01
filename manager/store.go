package manager

import (
	"context"
	"errors"
	"time"
)

// Binding says which plugin holds a key and under which handle.
type Binding struct {
	KID     KID       `json:"kid"`
	Plugin  string    `json:"plugin"`
	Handle  string    `json:"handle"`
	Label   string    `json:"label,omitempty"`
	Created time.Time `json:"created"`
}

// Intent is written before a plugin makes (or imports) a key: if the
// process dies before the binding is written, [Manager.Recover] finds the
// key by its label and binds it, or drops the intent when no key was made.
type Intent struct {
	Label   string    `json:"label"`
	Plugin  string    `json:"plugin"`
	Created time.Time `json:"created"`
	// Migrate is the kid being migrated when the intent is an import of
	// an existing key into Plugin; empty for a new key.
	Migrate KID `json:"migrate,omitempty"`
}

// ClaimKind is what a claim on a key is for.
type ClaimKind string

// Claim kinds.
const (
	ClaimDelete  ClaimKind = "delete"
	ClaimMigrate ClaimKind = "migrate"
)

// Claim marks a key as being deleted or migrated. Only one claim per key
// exists at a time; it is the lock that lets one writer change a binding.
type Claim struct {
	KID     KID       `json:"kid"`
	Kind    ClaimKind `json:"kind"`
	Created time.Time `json:"created"`
	// Label is the migration's intent label; SourcePlugin and
	// SourceHandle say where the key was before it.
	Label        string `json:"label,omitempty"`
	SourcePlugin string `json:"source_plugin,omitempty"`
	SourceHandle string `json:"source_handle,omitempty"`
}

// Choice is the plugin remembered for an issuer and a credential type.
type Choice struct {
	Issuer         string    `json:"issuer"`
	CredentialType string    `json:"credential_type"`
	Plugin         string    `json:"plugin"`
	Created        time.Time `json:"created"`
}

// Store errors.
var (
	// ErrExists: Bind, Claim or PutIntent found a record already there.
	ErrExists = errors.New("manager: record exists")
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("manager: record not found")
)

// BindingStore persists bindings, intents, claims and choices. Every
// write is atomic and never overwrites another writer's record, except
// Rebind, which only the holder of the key's claim calls.
// Implementations: [DirStore] (a directory on a file system); the browser
// extension's storage (issue 10).
type BindingStore interface {
	PutIntent(ctx context.Context, in Intent) error
	DeleteIntent(ctx context.Context, label string) error
	Intents(ctx context.Context) ([]Intent, error)

	// Bind creates b; ErrExists when the kid is bound already.
	Bind(ctx context.Context, b Binding) error
	// Rebind replaces the binding of b.KID (the caller holds its claim).
	Rebind(ctx context.Context, b Binding) error
	Unbind(ctx context.Context, kid KID) error
	Binding(ctx context.Context, kid KID) (Binding, error)
	Bindings(ctx context.Context) ([]Binding, error)

	// Claim creates c; ErrExists when the key is claimed already.
	Claim(ctx context.Context, c Claim) error
	Release(ctx context.Context, kid KID) error
	Claims(ctx context.Context) ([]Claim, error)

	// Choose stores c unless a choice for its issuer and credential type
	// exists; it returns the stored choice either way.
	Choose(ctx context.Context, c Choice) (Choice, error)
}
