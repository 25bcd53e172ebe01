package jsbridge

import (
	"errors"
	"fmt"
	"testing"

	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/manager/remote"
)

func TestCode(t *testing.T) {
	pe := func(err error) error { return &manager.PluginError{Plugin: "p", Op: manager.OpSign, Err: err} }
	for _, tc := range []struct {
		err          error
		code, plugin string
	}{
		{&manager.NoPluginError{Plugin: "x"}, CodeNoPlugin, "x"},
		{manager.ErrNoDefault, CodeNoDefault, ""},
		{&manager.UnsupportedError{Plugin: "u", Op: manager.OpECDH}, CodeUnsupported, "u"},
		{pe(manager.ErrKeyNotFound), CodeKeyNotFound, "p"},
		{manager.ErrNoEligiblePlugin, CodeNoEligiblePlugin, ""},
		{fmt.Errorf("%w: bound", manager.ErrKIDCollision), CodeKIDCollision, ""},
		{pe(fmt.Errorf("%w: %w", manager.ErrAuthRequired, errors.New("server"))), CodeAuthRequired, "p"},
		{pe(remote.ErrNotEnrolled), CodeAuthRequired, "p"},
		{pe(manager.ErrAuthCancelled), CodeAuthCancelled, "p"},
		{fmt.Errorf("%w: x", manager.ErrInvalidInput), CodeInvalidInput, ""},
		{manager.ErrBusy, CodeBusy, ""},
		{pe(manager.ErrAssertionOnly), CodeAssertionOnly, "p"},
		{manager.ErrCorruptBinding, CodeCorruptBinding, ""},
		{pe(errors.New("network")), CodePluginFailed, "p"},
		{errors.New("storage"), CodeInternal, ""},
	} {
		code, plugin := Code(tc.err)
		if code != tc.code || plugin != tc.plugin {
			t.Errorf("Code(%v) = %q, %q; want %q, %q", tc.err, code, plugin, tc.code, tc.plugin)
		}
	}
}
