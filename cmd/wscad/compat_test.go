package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/internal/gor2pswire"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
)

// adminCall sends one admin API request with the bearer token.
func adminCall(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// TestCompatEndToEnd: wscad started with --compat=jwe or --compat=bearer
// (the flag, through to the dispatcher) says so in its first log line,
// warns of bearer; the operator creates a unit and provisions its CSK
// through the admin API; then a go-r2ps-service wallet registers without
// a code, logs in, generates, lists, signs and changes its PIN. The
// bearer run also sets --key-quota 1 and its second key is refused.
// Without --compat the same wallet is refused.
func TestCompatEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		jwe   bool
		quota string
	}{
		{"jwe", true, ""},
		{"bearer", false, "1"},
		{"off", false, ""},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx := t.Context()
			dir := t.TempDir()
			tok := strings.Repeat("c", 40)
			tokFile := filepath.Join(dir, "admin-token")
			if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			admin := freeAddr(t)
			args := []string{"--data-dir", filepath.Join(dir, "data"), "--device-backend", "soft",
				"--admin-listen", admin, "--admin-token-file", tokFile}
			if tc.mode != "off" {
				args = append(args, "--compat="+tc.mode)
			}
			if tc.quota != "" {
				args = append(args, "--key-quota", tc.quota)
			}
			base, logs := start(t, args, noEnv)
			first, _, _ := strings.Cut(logs.String(), "\n")
			var line map[string]any
			if err := json.Unmarshal([]byte(first), &line); err != nil || line["compat"] != tc.mode {
				t.Fatalf("first log line lacks compat=%s: %q", tc.mode, first)
			}
			if warned := strings.Contains(logs.String(), `"level":"WARN","msg":"--compat=bearer`); warned != (tc.mode == "bearer") {
				t.Fatalf("bearer warning %v in mode %s:\n%s", warned, tc.mode, logs.String())
			}

			adminURL := "http://" + admin + "/admin/v1"
			code, out := adminCall(t, "POST", adminURL+"/units", tok, `{}`)
			if code != http.StatusCreated {
				t.Fatalf("create unit: %d %v", code, out)
			}
			unit := out["unit"].(string)
			csk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			jwk, _ := json.Marshal(jose.JSONWebKey{Key: &csk.PublicKey})
			code, out = adminCall(t, "PUT", adminURL+"/units/"+unit+"/client-key", tok, `{"jwk":`+string(jwk)+`}`)
			if code != http.StatusOK || out["kid"] != r2ps.Thumbprint(&csk.PublicKey) {
				t.Fatalf("provision: %d %v", code, out)
			}

			keys, err := client.FetchServerKeys(ctx, httptransport.New(nil), base)
			if err != nil {
				t.Fatal(err)
			}
			var opts []gor2pswire.Option
			if tc.jwe {
				opts = append(opts, gor2pswire.WithJWE())
			}
			w := gor2pswire.New(base, unit, "hsm", csk, keys.Signing, opts...)
			err = w.Register(ctx, []byte("1234"))
			if tc.mode == "off" {
				if err == nil {
					t.Fatal("a go-r2ps-service registration was served without --compat")
				}
				return
			}
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			if _, err := w.Authenticate(ctx, []byte("1234")); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			k, err := w.Generate(ctx)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			list, err := w.ListKeys(ctx)
			if err != nil || len(list) != 1 || list[0].KID != k.KID {
				t.Fatalf("ListKeys: %v %v", list, err)
			}
			digest := sha256.Sum256([]byte("message"))
			sig, err := w.Sign(ctx, k.KID, digest[:])
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if k.PublicKey == nil || !ecdsa.VerifyASN1(k.PublicKey, digest[:], sig) {
				t.Fatal("the signature does not verify with the generated key")
			}
			_, err = w.Generate(ctx)
			var se *gor2pswire.ServerError
			switch {
			case tc.quota == "1" && (!errors.As(err, &se) || se.Code != r2ps.CodeAccessDenied):
				t.Fatalf("second key over --key-quota 1: %v, want ACCESS_DENIED", err)
			case tc.quota == "" && err != nil:
				t.Fatalf("second key: %v", err)
			}
			if err := w.ChangePIN(ctx, []byte("4321")); err != nil {
				t.Fatalf("ChangePIN: %v", err)
			}
			if _, err := w.Authenticate(ctx, []byte("1234")); err == nil {
				t.Fatal("the old PIN still logs in")
			}
			if _, err := w.Authenticate(ctx, []byte("4321")); err != nil {
				t.Fatalf("Authenticate with the new PIN: %v", err)
			}
		})
	}
}
