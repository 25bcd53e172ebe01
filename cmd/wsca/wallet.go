package main

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/manager"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/r2ps/client/httptransport"
)

// newWallet makes fresh client keys (CSK, CAK) and pins the server's keys
// as the server presents them now. Fetching trusts the network once: the
// thumbprints are shown so that they can be compared out of band.
func newWallet(ctx context.Context, hc *http.Client, path, url, unit, secCtx string) (*wallet, error) {
	if _, err := device.ParseOwner(unit); err != nil {
		return nil, fmt.Errorf("unit id: %w", err)
	}
	if secCtx == "" {
		return nil, errors.New("the context must not be empty")
	}
	w := &wallet{path: path, url: url, unit: unit, context: secCtx, hc: hc}
	keys, err := client.FetchServerKeys(ctx, httptransport.New(w.httpClient()), url)
	if err != nil {
		return nil, err
	}
	w.server = keys
	if w.csk, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if w.cak, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *wallet) httpClient() *http.Client {
	if w.hc != nil {
		return w.hc
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (w *wallet) client() (*client.Client, error) {
	return client.New(client.Config{URL: w.url, Transport: httptransport.New(w.httpClient()), Unit: w.unit, Context: w.context,
		SigningKey: w.csk, AgreementKey: w.cak, Server: w.server})
}

// enrol registers the wallet's keys and PIN with an activation code.
func (w *wallet) enrol(ctx context.Context, code string, pin []byte) error {
	c, err := w.client()
	if err != nil {
		return err
	}
	if err := c.Enrol(ctx, code, pin); err != nil {
		return explain("enrolment", err, "the activation code is wrong, used or expired, or the unit is not active")
	}
	w.enrolled = true
	return nil
}

// enrolR2PS registers the wallet's keys and the PIN (read beforehand)
// with an activation code, through the r2ps plugin.
func enrolR2PS(ctx context.Context, w *wallet, code string, pin []byte) error {
	p, err := newR2PS(w)
	if err != nil {
		return err
	}
	auth := &cliAuth{preset: map[manager.Reason][]byte{manager.ReasonRegister: pin}}
	if err := p.Enrol(ctx, code, manager.Env{Auth: auth}); err != nil {
		return explain("enrolment", err, "the activation code is wrong, used or expired, or the unit is not active")
	}
	w.enrolled = true
	return nil
}

// dropBindings removes the manager's bindings of one plugin's keys.
func dropBindings(ctx context.Context, dir, plugin string) error {
	st, err := manager.OpenDirStore(filepath.Join(dir, "bindings"))
	if err != nil {
		return err
	}
	bs, err := st.Bindings(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range bs {
		if b.Plugin == plugin {
			if err := st.Unbind(ctx, b.KID); err != nil && !errors.Is(err, manager.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// kids returns the RFC 7638 thumbprints of the wallet's own public keys.
func (w *wallet) kids() (csk, cak string, err error) {
	pub, err := device.PublicKeyFromBytes(w.cak.PublicKey().Bytes())
	if err != nil {
		return "", "", err
	}
	return r2ps.Thumbprint(&w.csk.PublicKey), r2ps.Thumbprint(pub), nil
}

// explain wraps a server's refusal with what it most likely means here;
// unauthorized is the meaning of UNAUTHORIZED for this step (the r2ps
// plugin reports a refused PIN as manager.ErrAuthRequired). The server's
// code stays in the message; the session errors are returned as they are.
func explain(op string, err error, unauthorized string) error {
	if errors.Is(err, errNoSession) || errors.Is(err, errSessionExpired) {
		return userError(err)
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		if errors.Is(err, manager.ErrAuthRequired) && unauthorized != "" {
			return fmt.Errorf("%s: %w (%s)", op, err, unauthorized)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	hint := map[string]string{
		r2ps.CodeUnauthorized: unauthorized,
		r2ps.CodeAccessDenied: "the PIN is locked or in a wait after failures, the session's task forbids this, or the unit is not active",
		r2ps.CodeTryLater:     "the server's device or store is unavailable",
	}[ce.Code]
	if hint == "" {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w (%s)", op, err, hint)
}

// verifyWithListed checks sig with the public key the server lists for
// kid (its kid is checked to be that key's thumbprint by the client).
func verifyWithListed(ctx context.Context, s *client.Session, kid string, digest, sig []byte) error {
	keys, err := s.ListKeys(ctx)
	if err != nil {
		return explain("sign: listing keys to verify", err, "")
	}
	for _, k := range keys {
		if k.KID == kid {
			if !ecdsa.VerifyASN1(k.Public, digest, sig) {
				return fmt.Errorf("sign: the signature does not verify with the public key of %s", kid)
			}
			return nil
		}
	}
	return fmt.Errorf("sign: key %s is not in the unit's key list", kid)
}
