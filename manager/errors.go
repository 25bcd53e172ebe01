package manager

import (
	"errors"
	"fmt"
)

// Sentinel errors; the typed errors below match them with errors.Is.
var (
	ErrNoPlugin         = errors.New("manager: no such plugin")
	ErrNoDefault        = errors.New("manager: no plugin for this operation")
	ErrUnsupported      = errors.New("manager: the plugin does not support this operation")
	ErrKeyNotFound      = errors.New("manager: no such key")
	ErrNoEligiblePlugin = errors.New("manager: no plugin meets the requirement")
	ErrKIDCollision     = errors.New("manager: the key id is already bound to another plugin")
	ErrAuthRequired     = errors.New("manager: authentication required")
	ErrAuthCancelled    = errors.New("manager: authentication cancelled")
	ErrInvalidInput     = errors.New("manager: invalid input")
	ErrCorruptBinding   = errors.New("manager: a stored binding is corrupt")
	ErrBusy             = errors.New("manager: the key is being deleted or migrated")
	ErrKeyMismatch      = errors.New("manager: the plugin returned another key than expected")
	// ErrAssertionOnly: the key signs WebAuthn assertions, never a bare
	// digest (a FIDO2 credential); use [Manager.SignAssertion].
	ErrAssertionOnly = errors.New("manager: the key signs WebAuthn assertions only")
)

// PluginError is a failure of one plugin, with its id.
type PluginError struct {
	Plugin string
	Op     Op
	Err    error
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("manager: plugin %q, %s: %v", e.Plugin, e.Op, e.Err)
}

func (e *PluginError) Unwrap() error { return e.Err }

// NoPluginError names the plugin a resolution level asked for and did not
// find.
type NoPluginError struct{ Plugin string }

func (e *NoPluginError) Error() string        { return fmt.Sprintf("manager: no plugin %q", e.Plugin) }
func (e *NoPluginError) Is(target error) bool { return target == ErrNoPlugin }

// UnsupportedError says which plugin cannot do which operation.
type UnsupportedError struct {
	Plugin string
	Op     Op
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("manager: plugin %q does not support %s", e.Plugin, e.Op)
}
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// ListError reports the plugins whose list failed; the keys of the others
// were still returned.
type ListError struct{ Failed map[string]error }

func (e *ListError) Error() string {
	return fmt.Sprintf("manager: %d plugin(s) could not list their keys", len(e.Failed))
}

// Unwrap returns every plugin's error.
func (e *ListError) Unwrap() []error {
	out := make([]error, 0, len(e.Failed))
	for _, err := range e.Failed {
		out = append(out, err)
	}
	return out
}
