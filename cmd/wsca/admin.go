package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/wscd"
)

// adminFlags are the flags of the admin commands: where the admin API is
// and the token to show it.
type adminFlags struct {
	fs        *flag.FlagSet
	url       string
	tokenFile string
	asJSON    bool
}

func newAdminFlags(e env, name string) *adminFlags {
	f := &adminFlags{fs: flag.NewFlagSet("wsca "+name, flag.ContinueOnError)}
	f.fs.SetOutput(e.stderr)
	f.fs.StringVar(&f.url, "admin-url", "http://127.0.0.1:8081", "base `URL` of wscad's admin API")
	f.fs.StringVar(&f.tokenFile, "admin-token-file", "", "`file` holding the admin bearer token")
	f.fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	return f
}

func (f *adminFlags) parse(e env, args []string, nargs int) ([]string, error) {
	return parseArgs(e, f.fs, args, nargs, e.lookup)
}

// call sends one admin request and decodes the JSON answer into out.
func (f *adminFlags) call(ctx context.Context, method, path string, body, out any) error {
	if f.tokenFile == "" {
		return errors.New("--admin-token-file (WSCA_ADMIN_TOKEN_FILE) is required")
	}
	tok, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(f.url, "/")+"/admin/v1"+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimRight(string(tok), "\r\n"))
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}
		json.Unmarshal(data, &e)
		return fmt.Errorf("admin API: %s: %s (request %s)", resp.Status, e.Error, e.RequestID)
	}
	return json.Unmarshal(data, out)
}

type adminCode struct {
	Unit      string    `json:"unit"`
	Code      string    `json:"activation_code"`
	Purpose   string    `json:"purpose"`
	ExpiresAt time.Time `json:"expires_at"`
}

func printCode(e env, asJSON bool, c adminCode) error {
	return printResult(e, asJSON, c, func(w io.Writer) {
		fmt.Fprintf(w, "unit:            %s\nactivation code: %s\npurpose:         %s\nexpires:         %s\n",
			c.Unit, c.Code, c.Purpose, c.ExpiresAt.Format(time.RFC3339))
	})
}

func adminUnitCreate(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit create")
	unit := f.fs.String("unit", "", "unit `id` (default: a random one)")
	ttl := f.fs.Duration("ttl", 0, "activation code lifetime (default 24h)")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	var c adminCode
	if err := f.call(ctx, "POST", "/units", map[string]any{"unit": *unit, "ttl": int64(ttl.Seconds())}, &c); err != nil {
		return err
	}
	return printCode(e, f.asJSON, c)
}

func adminUnitCode(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit code")
	purpose := f.fs.String("purpose", "activation", "activation or pin_reset (a PIN reset also ends the unit's sessions)")
	ttl := f.fs.Duration("ttl", 0, "code lifetime (default 24h)")
	pos, err := f.parse(e, args, 1)
	if err != nil {
		return err
	}
	var c adminCode
	if err := f.call(ctx, "POST", "/units/"+url.PathEscape(pos[0])+"/codes", map[string]any{"purpose": *purpose, "ttl": int64(ttl.Seconds())}, &c); err != nil {
		return err
	}
	return printCode(e, f.asJSON, c)
}

func adminUnitShow(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit show")
	pos, err := f.parse(e, args, 1)
	if err != nil {
		return err
	}
	var u map[string]any
	if err := f.call(ctx, "GET", "/units/"+url.PathEscape(pos[0]), nil, &u); err != nil {
		return err
	}
	return printResult(e, f.asJSON, u, func(w io.Writer) {
		fmt.Fprintf(w, "unit:    %v\nstate:   %v\ncreated: %v\n", u["unit"], u["state"], u["created_at"])
	})
}

func adminUnitList(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit list")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	var us []map[string]any
	if err := f.call(ctx, "GET", "/units", nil, &us); err != nil {
		return err
	}
	return printResult(e, f.asJSON, us, func(w io.Writer) {
		for _, u := range us {
			fmt.Fprintf(w, "%-40v %v\n", u["unit"], u["state"])
		}
	})
}

// adminUnitState returns the command that puts a unit in state.
func adminUnitState(state string) func(context.Context, env, []string) error {
	return func(ctx context.Context, e env, args []string) error {
		f := newAdminFlags(e, "admin unit "+state)
		pos, err := f.parse(e, args, 1)
		if err != nil {
			return err
		}
		var out map[string]any
		if err := f.call(ctx, "POST", "/units/"+url.PathEscape(pos[0])+"/state", map[string]string{"state": state}, &out); err != nil {
			return err
		}
		return printResult(e, f.asJSON, out, func(w io.Writer) { fmt.Fprintf(w, "unit %s is %s\n", pos[0], state) })
	}
}

// adminUnitDestroy destroys a unit for good; --yes confirms it.
func adminUnitDestroy(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit destroy")
	yes := f.fs.Bool("yes", false, "confirm: the unit's keys are destroyed and its records erased, for good")
	pos, err := f.parse(e, args, 1)
	if err != nil {
		return err
	}
	if !*yes {
		return fmt.Errorf("destroying unit %s destroys its keys and erases its records for good: add --yes", pos[0])
	}
	var out map[string]any
	if err := f.call(ctx, "DELETE", "/units/"+url.PathEscape(pos[0]), nil, &out); err != nil {
		return err
	}
	return printResult(e, f.asJSON, out, func(w io.Writer) { fmt.Fprintf(w, "unit %s destroyed\n", pos[0]) })
}

func adminUnitUnlock(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit unlock")
	pinCtx := f.fs.String("context", "hsm", "security context of the PIN")
	pos, err := f.parse(e, args, 1)
	if err != nil {
		return err
	}
	var out map[string]any
	if err := f.call(ctx, "POST", "/units/"+url.PathEscape(pos[0])+"/unlock", map[string]string{"context": *pinCtx}, &out); err != nil {
		return err
	}
	return printResult(e, f.asJSON, out, func(w io.Writer) { fmt.Fprintf(w, "PIN of %s unlocked in context %s\n", pos[0], *pinCtx) })
}

func adminUnitAttempts(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit attempts")
	pinCtx := f.fs.String("context", "hsm", "security context of the PIN")
	pos, err := f.parse(e, args, 1)
	if err != nil {
		return err
	}
	var out map[string]any
	if err := f.call(ctx, "GET", "/units/"+url.PathEscape(pos[0])+"/attempts?context="+url.QueryEscape(*pinCtx), nil, &out); err != nil {
		return err
	}
	return printResult(e, f.asJSON, out, func(w io.Writer) {
		fmt.Fprintf(w, "failures: %v\nlocked:   %v\n", out["failures"], out["locked"])
	})
}

// adminUnitCSK binds a go-r2ps-service wallet's signing key to a unit
// (compat profile). The key file is read and checked here: a private key
// is refused before anything is sent, and only the public JWK goes out.
func adminUnitCSK(ctx context.Context, e env, args []string) error {
	f := newAdminFlags(e, "admin unit csk")
	keyFile := f.fs.String("key", "", "`file` with the wallet's P-256 public signing key: PEM (PUBLIC KEY) or JWK; - reads stdin")
	pos, err := f.parse(e, args, 1)
	if err != nil {
		return err
	}
	if *keyFile == "" {
		return errors.New("--key is required")
	}
	var raw []byte
	if *keyFile == "-" {
		raw, err = io.ReadAll(io.LimitReader(e.stdin, 64<<10))
	} else {
		raw, err = os.ReadFile(*keyFile)
	}
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	pub, err := wscd.ParseClientKey(raw)
	clear(raw)
	if err != nil {
		return fmt.Errorf("key %s: %w", *keyFile, err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: pub})
	if err != nil {
		return err
	}
	var out struct {
		Unit      string    `json:"unit"`
		KID       string    `json:"kid"`
		Profile   string    `json:"profile"`
		CreatedAt time.Time `json:"created_at"`
	}
	if err := f.call(ctx, "PUT", "/units/"+url.PathEscape(pos[0])+"/client-key", map[string]json.RawMessage{"jwk": jwk}, &out); err != nil {
		return err
	}
	return printResult(e, f.asJSON, out, func(w io.Writer) {
		fmt.Fprintf(w, "unit:    %s\nkid:     %s\nprofile: %s\n", out.Unit, out.KID, out.Profile)
	})
}
