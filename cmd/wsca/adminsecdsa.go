package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
)

// adminUnitSECDSAReset resets a unit's SECDSA binding over the admin API
// (docs/secdsa.md, "Operator reset"): its aU is destroyed and the wallet
// activates again; --yes confirms it.
func adminUnitSECDSAReset(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit secdsa-reset")
	yes := f.fs.Bool("yes", false, "confirm: the unit's SECDSA key is destroyed and the wallet must activate again")
	pos, err := f.parse(e, args, 1)
	if err != nil {
		return err
	}
	if !*yes {
		return fmt.Errorf("resetting unit %s's SECDSA binding destroys its key (the wallet activates again): add --yes", pos[0])
	}
	var out map[string]any
	if err := f.call(ctx, "POST", "/units/"+url.PathEscape(pos[0])+"/secdsa/reset", map[string]bool{"confirm": true}, &out); err != nil {
		return err
	}
	return printResult(e, f.asJSON, out, func(w io.Writer) {
		fmt.Fprintf(w, "SECDSA binding of %s reset: the wallet activates again\n", pos[0])
	})
}
