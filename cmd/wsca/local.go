package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/config"
)

// flags are the flags every local command shares.
type flags struct {
	fs       *flag.FlagSet
	state    config.State
	asJSON   bool
	logLevel string
	unit     string
}

func newFlags(e env, name string, withUnit bool) *flags {
	f := &flags{fs: flag.NewFlagSet("wsca "+name, flag.ContinueOnError)}
	f.fs.SetOutput(e.stderr)
	f.state.Bind(f.fs)
	f.fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	f.fs.StringVar(&f.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn or error")
	if withUnit {
		f.fs.StringVar(&f.unit, "unit", "", "wallet unit `id`")
	}
	return f
}

// parse parses args, applies WSCA_* variables, and checks the positional
// argument count.
func (f *flags) parse(e env, args []string, nargs int) ([]string, error) {
	pos, err := parseArgs(e, f.fs, args, nargs, e.lookup)
	if err != nil {
		return nil, err
	}
	if f.fs.Lookup("unit") != nil && f.unit == "" {
		fmt.Fprintf(e.stderr, "wsca: %s needs --unit\n", f.fs.Name())
		return nil, errUsage
	}
	return pos, nil
}

func (f *flags) open(ctx context.Context, e env) (*config.Opened, error) {
	log, err := config.Logger(e.stderr, "text", f.logLevel)
	if err != nil {
		return nil, err
	}
	if err := f.state.Check(); err != nil {
		return nil, err
	}
	res, err := f.state.Resolve()
	if err != nil {
		return nil, err
	}
	if res.Defaults != "" {
		log.Info("using " + res.Defaults)
	}
	return config.Open(ctx, res, log.With("cmd", "wsca"), nil)
}

// run parses args (nargs positional ones), opens the store and device, and
// calls fn.
func (f *flags) run(ctx context.Context, e env, args []string, nargs int, fn func(o *config.Opened, pos []string) error) error {
	pos, err := f.parse(e, args, nargs)
	if err != nil {
		return err
	}
	o, err := f.open(ctx, e)
	if err != nil {
		return err
	}
	defer o.Close()
	return fn(o, pos)
}

func deviceInit(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "device init", false)
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if f.state.Store != "" || f.state.Device != "" {
		return errors.New("device init works on the data directory; --store and --device name existing ones")
	}
	if err := f.state.Check(); err != nil {
		return err
	}
	res, err := f.state.Resolve()
	if err != nil {
		return err
	}
	o, err := config.Open(ctx, res, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	defer o.Close()
	info := o.Device.Info()
	out := map[string]any{"data_dir": f.state.DataDir, "backend": info.Backend, "assurance": info.Assurance, "device": info.Description}
	return printResult(e, f.asJSON, out, func(w io.Writer) {
		fmt.Fprintf(w, "data directory %s ready: %s\n", f.state.DataDir, info.Description)
		if info.SoftwareOnly() {
			fmt.Fprintln(w, "note: software keystore, for development only; install softhsm2 or configure an HSM for real use")
		}
	})
}

func deviceInfo(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "device info", false)
	return f.run(ctx, e, args, 0, func(o *config.Opened, pos []string) error {
		info := o.Device.Info()
		ping := "ok"
		if err := o.WSCD.Keys.Ready(ctx); err != nil {
			ping = err.Error()
		}
		out := map[string]any{"backend": info.Backend, "assurance": info.Assurance, "device": info.Description,
			"store": o.Store.Backend(), "ready": ping}
		return printResult(e, f.asJSON, out, func(w io.Writer) {
			fmt.Fprintf(w, "device:   %s (%s, assurance %s)\nstore:    %s\nready:    %s\n",
				info.Description, info.Backend, info.Assurance, o.Store.Backend(), ping)
		})
	})
}

func unitsCreate(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "unit create", false)
	return f.run(ctx, e, args, 1, func(o *config.Opened, pos []string) error {
		if err := o.WSCD.Units.Create(ctx, pos[0]); err != nil {
			return err
		}
		return printResult(e, f.asJSON, map[string]string{"unit": pos[0], "state": "active"}, func(w io.Writer) {
			fmt.Fprintf(w, "unit %s created\n", pos[0])
		})
	})
}

func unitsList(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "unit list", false)
	return f.run(ctx, e, args, 0, func(o *config.Opened, pos []string) error {
		units, err := o.Store.ListUnits(ctx)
		if err != nil {
			return err
		}
		type row struct {
			Unit    string    `json:"unit"`
			State   string    `json:"state"`
			Created time.Time `json:"created"`
		}
		rows := []row{}
		for _, u := range units {
			rows = append(rows, row{u.ID, string(u.State), u.CreatedAt})
		}
		return printResult(e, f.asJSON, rows, func(w io.Writer) {
			for _, r := range rows {
				fmt.Fprintf(w, "%-40s %-10s %s\n", r.Unit, r.State, r.Created.Format(time.RFC3339))
			}
		})
	})
}

// jwk is a P-256 public JWK (RFC 7517/7518 §6.2.1).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
}

func toJWK(pub *ecdsa.PublicKey, kid device.KID) (jwk, error) {
	b, err := pub.Bytes()
	if err != nil {
		return jwk{}, err
	}
	enc := base64.RawURLEncoding
	return jwk{Kty: "EC", Crv: "P-256", X: enc.EncodeToString(b[1:33]), Y: enc.EncodeToString(b[33:65]), Kid: string(kid)}, nil
}

type keyRow struct {
	KID     string     `json:"kid"`
	Unit    string     `json:"unit"`
	Backend string     `json:"backend,omitempty"`
	Created *time.Time `json:"created,omitempty"`
	JWK     jwk        `json:"jwk"`
}

func keysGenerate(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "key generate", true)
	return f.run(ctx, e, args, 0, func(o *config.Opened, pos []string) error {
		k, err := o.WSCD.Keys.Generate(ctx, f.unit)
		if err != nil {
			return err
		}
		j, err := toJWK(k.Public, k.KID)
		if err != nil {
			return err
		}
		row := keyRow{KID: string(k.KID), Unit: f.unit, Backend: o.Device.Info().Backend, JWK: j}
		return printResult(e, f.asJSON, row, func(w io.Writer) { fmt.Fprintln(w, k.KID) })
	})
}

func keysList(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "key list", true)
	fromDevice := f.fs.Bool("on-device", false, "list what the device holds for the unit instead of the store's records")
	return f.run(ctx, e, args, 0, func(o *config.Opened, pos []string) error {
		rows := []keyRow{}
		if *fromDevice {
			owner, err := device.ParseOwner(f.unit)
			if err != nil {
				return err
			}
			keys, err := o.Device.List(ctx, owner)
			if err != nil {
				return err
			}
			for _, k := range keys {
				j, err := toJWK(k.Public, k.KID)
				if err != nil {
					return err
				}
				rows = append(rows, keyRow{KID: string(k.KID), Unit: f.unit, JWK: j})
			}
		} else {
			keys, err := o.WSCD.Keys.List(ctx, f.unit)
			if err != nil {
				return err
			}
			for _, k := range keys {
				pub, err := device.PublicKeyFromBytes(k.PublicKey)
				if err != nil {
					return fmt.Errorf("record of %s: %w", k.KID, err)
				}
				j, err := toJWK(pub, device.KID(k.KID))
				if err != nil {
					return err
				}
				created := k.CreatedAt
				rows = append(rows, keyRow{KID: k.KID, Unit: k.UnitID, Backend: k.Backend, Created: &created, JWK: j})
			}
		}
		return printResult(e, f.asJSON, rows, func(w io.Writer) {
			for _, r := range rows {
				when := ""
				if r.Created != nil {
					when = r.Created.Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s %-8s %s\n", r.KID, r.Backend, when)
			}
		})
	})
}

func keysDestroy(ctx context.Context, e env, args []string) error {
	f := newFlags(e, "key destroy", true)
	return f.run(ctx, e, args, 1, func(o *config.Opened, pos []string) error {
		if err := o.WSCD.Keys.Destroy(ctx, f.unit, pos[0]); err != nil {
			return err
		}
		return printResult(e, f.asJSON, map[string]string{"kid": pos[0], "destroyed": "true"}, func(w io.Writer) {
			fmt.Fprintf(w, "key %s destroyed\n", pos[0])
		})
	})
}
