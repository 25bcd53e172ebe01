package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// The key-maintenance commands (docs/wrapped-keys.md, docs/operations.md):
// each calls one admin API batch after another until the run is done,
// printing progress to stderr. A run stopped midway is resumed by running
// the command again (or from the last cursor printed, with --cursor).

// keysBatch is the admin API's answer to one batch; the counts not kept by
// one command stay zero.
type keysBatch struct {
	Cursor      string   `json:"cursor"`
	Done        bool     `json:"done"`
	Remaining   int64    `json:"remaining"`
	Lost        int      `json:"lost"`
	Refused     int      `json:"refused"`
	RefusedKIDs []string `json:"refused_kids,omitempty"`
	Rewrapped   int      `json:"rewrapped"`
	ServerKeys  int      `json:"server_keys"`
	SECDSA      int      `json:"secdsa"`
	Migrated    int      `json:"migrated"`
	StayToken   int      `json:"stay_token"`
	CopiesLeft  int      `json:"copies_left"`
}

func (t *keysBatch) add(b keysBatch) {
	t.Lost += b.Lost
	t.Refused += b.Refused
	t.RefusedKIDs = append(t.RefusedKIDs, b.RefusedKIDs...)
	t.Rewrapped += b.Rewrapped
	t.ServerKeys += b.ServerKeys
	t.SECDSA += b.SECDSA
	t.Migrated += b.Migrated
	t.StayToken += b.StayToken
	t.CopiesLeft += b.CopiesLeft
	t.Cursor, t.Done, t.Remaining = b.Cursor, b.Done, b.Remaining
}

// adminKeysRun returns the command that runs op (rewrap or migrate) to the
// end.
func adminKeysRun(op string) func(context.Context, env, []string) error {
	return func(ctx context.Context, e env, args []string) error {
		f := newAdminFlags(e, "admin keys "+op)
		batch := f.fs.Int("batch", 0, "keys per admin API call (default 500, at most 10000)")
		cursor := f.fs.String("cursor", "", "resume after this kid (printed by an interrupted run); default: from the start")
		if _, err := f.parse(e, args, 0); err != nil {
			return err
		}
		var total keysBatch
		for calls := 1; ; calls++ {
			var b keysBatch
			if err := f.call(ctx, "POST", "/keys/"+op, map[string]any{"cursor": *cursor, "batch": *batch}, &b); err != nil {
				if *cursor != "" {
					return fmt.Errorf("%w (resume with --cursor %s)", err, *cursor)
				}
				return err
			}
			total.add(b)
			if !f.asJSON {
				fmt.Fprintf(e.stderr, "batch %d: %s; remaining %d\n", calls, counts(op, b), b.Remaining)
			}
			if b.Done {
				break
			}
			if b.Cursor == "" || b.Cursor <= *cursor {
				return errors.New("admin API: a batch that is not done returned no new cursor")
			}
			*cursor = b.Cursor
		}
		return printResult(e, f.asJSON, total, func(w io.Writer) {
			fmt.Fprintf(w, "done: %s\n", counts(op, total))
			if len(total.RefusedKIDs) > 0 {
				fmt.Fprintf(w, "refused (see wscad's log): %v\n", total.RefusedKIDs)
			}
		})
	}
}

func counts(op string, b keysBatch) string {
	if op == "migrate" {
		return fmt.Sprintf("%d migrated, %d stay token objects, %d lost to a concurrent change, %d refused, %d token copies left",
			b.Migrated, b.StayToken, b.Lost, b.Refused, b.CopiesLeft)
	}
	return fmt.Sprintf("%d keys and %d server keys re-wrapped, %d SECDSA keys re-wrapped, %d lost to a concurrent change, %d refused",
		b.Rewrapped, b.ServerKeys, b.SECDSA, b.Lost, b.Refused)
}

type wrappingKeyInfo struct {
	ID         string `json:"id"`
	Label      string `json:"label,omitempty"`
	Current    bool   `json:"current"`
	OnDevice   bool   `json:"on_device"`
	Known      bool   `json:"known"`
	Keys       int64  `json:"keys"`
	ServerKeys int64  `json:"server_keys"`
	OPRFKeys   int64  `json:"oprf_keys"`
	Unused     bool   `json:"unused"`
}

// adminWrappingKeys reports the wrapping keys and which blobs name them;
// with --delete-unused --yes it deletes the unused ones.
func adminWrappingKeys(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin keys wrapping-keys")
	del := f.fs.Bool("delete-unused", false, "delete the wrapping keys no blob names (with --yes): final, every blob under them becomes useless")
	yes := f.fs.Bool("yes", false, "confirm --delete-unused")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if *yes && !*del {
		return errors.New("--yes confirms --delete-unused, which was not given")
	}
	if *del {
		if !*yes {
			return errors.New("deleting wrapping keys is final (every blob under them becomes useless): add --yes")
		}
		var out struct {
			Deleted []wrappingKeyInfo `json:"deleted"`
		}
		if err := f.call(ctx, "POST", "/wrapping-keys/delete-unused", map[string]bool{"confirm": true}, &out); err != nil {
			return err
		}
		return printResult(e, f.asJSON, out, func(w io.Writer) {
			if len(out.Deleted) == 0 {
				fmt.Fprintln(w, "no unused wrapping key")
			}
			for _, k := range out.Deleted {
				fmt.Fprintf(w, "deleted %s %s\n", k.ID, k.Label)
			}
		})
	}
	var out struct {
		WrappingKeys []wrappingKeyInfo `json:"wrapping_keys"`
	}
	if err := f.call(ctx, "GET", "/wrapping-keys", nil, &out); err != nil {
		return err
	}
	return printResult(e, f.asJSON, out, func(w io.Writer) {
		fmt.Fprintf(w, "%-32s %-20s %8s %11s %9s  %s\n", "ID", "LABEL", "KEYS", "SERVER KEYS", "OPRF KEYS", "STATE")
		for _, k := range out.WrappingKeys {
			var state string
			switch {
			case !k.OnDevice:
				state = "MISSING from the device: its keys cannot be used"
			case k.Current:
				state = "current"
			case k.Unused:
				state = "unused (may be deleted)"
			case !k.Known:
				state = "not this store's (left alone)"
			case k.Keys == 0 && k.ServerKeys == 0:
				state = "in use by PIN records' OPRF keys (they move at each PIN change)"
			default:
				state = "in use: re-wrap first"
			}
			fmt.Fprintf(w, "%-32s %-20s %8d %11d %9d  %s\n", k.ID, k.Label, k.Keys, k.ServerKeys, k.OPRFKeys, state)
		}
	})
}
