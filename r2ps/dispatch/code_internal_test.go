package dispatch

import (
	"fmt"
	"testing"

	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/wsca"
)

// TestWSCACodes: the WSCA services' refusals reach the client as the
// R2PS code of a refusal, not SERVER_ERROR.
func TestWSCACodes(t *testing.T) {
	for _, r := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: unit u is revoked", wsca.ErrUnitState), r2ps.CodeAccessDenied},
		{fmt.Errorf("%w: k", wsca.ErrForeignKey), r2ps.CodeIllegalRequestData},
		{fmt.Errorf("%w: slots", wsca.ErrQuota), r2ps.CodeAccessDenied},
		{fmt.Errorf("%w: store", wsca.ErrUnavailable), r2ps.CodeTryLater},
	} {
		if got := codeOf(r.err); got != r.want {
			t.Errorf("codeOf(%v) = %s, want %s", r.err, got, r.want)
		}
	}
}
