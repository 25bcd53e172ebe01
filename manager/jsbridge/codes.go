package jsbridge

import (
	"errors"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/remote"
)

// Error codes a rejected promise carries in its code field.
const (
	CodeNoPlugin         = "no_plugin"
	CodeNoDefault        = "no_default"
	CodeUnsupported      = "unsupported"
	CodeKeyNotFound      = "key_not_found"
	CodeNoEligiblePlugin = "no_eligible_plugin"
	CodeKIDCollision     = "kid_collision"
	CodeAuthRequired     = "auth_required"
	CodeAuthCancelled    = "auth_cancelled"
	CodeInvalidInput     = "invalid_input"
	CodeBusy             = "busy"
	CodeAssertionOnly    = "assertion_only"
	CodeCorruptBinding   = "corrupt_binding"
	CodePluginFailed     = "plugin_failed"
	CodeInternal         = "internal"
)

// codes maps the manager's sentinels to codes, most specific first.
var codes = []struct {
	err  error
	code string
}{
	{manager.ErrAuthCancelled, CodeAuthCancelled},
	{manager.ErrAssertionOnly, CodeAssertionOnly},
	{manager.ErrKIDCollision, CodeKIDCollision},
	{manager.ErrNoEligiblePlugin, CodeNoEligiblePlugin},
	{manager.ErrNoPlugin, CodeNoPlugin},
	{manager.ErrNoDefault, CodeNoDefault},
	{manager.ErrUnsupported, CodeUnsupported},
	{manager.ErrKeyNotFound, CodeKeyNotFound},
	{manager.ErrAuthRequired, CodeAuthRequired},
	{remote.ErrNotEnrolled, CodeAuthRequired},
	{manager.ErrBusy, CodeBusy},
	{manager.ErrCorruptBinding, CodeCorruptBinding},
	{manager.ErrInvalidInput, CodeInvalidInput},
}

// Code returns the code for err and the plugin that failed, if one did.
func Code(err error) (code, plugin string) {
	var pe *manager.PluginError
	var np *manager.NoPluginError
	var ue *manager.UnsupportedError
	switch {
	case errors.As(err, &pe):
		plugin = pe.Plugin
	case errors.As(err, &np):
		plugin = np.Plugin
	case errors.As(err, &ue):
		plugin = ue.Plugin
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code, plugin
		}
	}
	if plugin != "" {
		return CodePluginFailed, plugin
	}
	return CodeInternal, ""
}
