package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wsca/wsca/attest"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
	"github.com/wsca/wsca/server"
	"github.com/wsca/wsca/statuslist"
	"github.com/wsca/wsca/store"
)

// attestDemo is the state of wsca demo attest: the R2PS demo's wallet and
// session, two keys, the attestations and what a verifier holds (the
// development CA's root, the JWKS).
type attestDemo struct {
	*demo
	keys     []client.Key
	verifier *attest.Verifier
	roots    *x509.CertPool
	kaRef    attest.StatusRef
	wiaRef   attest.StatusRef
}

func demoAttest(ctx context.Context, e env, args []string) error {
	d := &attestDemo{demo: &demo{}}
	return runDemo(ctx, e, args, "attest", "attestation", d.demo, d.run)
}

func (d *attestDemo) run(ctx context.Context, dir, backend string, log *slog.Logger) error {
	describe := func(srv *localServer) string {
		return fmt.Sprintf("in-process wscad (roles wscd and wsca) at %s; %s device, assurance %q", srv.url, srv.device.Backend, srv.device.Assurance)
	}
	return d.play(ctx, dir, backend, log, describe, []demoStepFunc{
		{"operator", d.operator},
		{"enrol", d.enrol},
		{"login", d.login},
		{"keys", d.twoKeys},
		{"trust", d.trust},
		{"key attestation", d.keyAttestation},
		{"wallet instance attestation", d.walletAttestation},
		{"proof of association", d.proofOfAssociation},
		{"status: valid", d.expect(statuslist.Status(0))},
		{"suspend", d.setState(store.UnitSuspended)},
		{"status: suspended", d.expect(statuslist.Status(2))},
		{"unsuspend", d.setState(store.UnitActive)},
		{"status: valid again", d.expect(statuslist.Status(0))},
		{"revoke", d.revoke},
		{"status: revoked", d.expect(statuslist.Status(1))},
		{"refused", d.refused},
	})
}

func (d *attestDemo) twoKeys(ctx context.Context) (string, error) {
	for range 2 {
		k, err := d.sess.Generate(ctx)
		if err != nil {
			return "", err
		}
		d.keys = append(d.keys, k)
	}
	return fmt.Sprintf("two P-256 keys made on the device: %s, %s", d.keys[0].KID, d.keys[1].KID), nil
}

// fetch GETs a path of the server.
func (d *attestDemo) fetch(ctx context.Context, url, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

// trust takes what a verifier is given: the development CA's root (the
// trust anchor; a Trusted List in production) and the provider's JWKS.
func (d *attestDemo) trust(ctx context.Context) (string, error) {
	b, err := d.fetch(ctx, d.srv.url+server.DevCAPath, "")
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", errors.New("no PEM at " + server.DevCAPath)
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", err
	}
	jwks, err := d.fetch(ctx, d.srv.url+server.JWKSPath, "")
	if err != nil {
		return "", err
	}
	ks, err := attest.ParseKeySet(jwks)
	if err != nil {
		return "", err
	}
	if d.verifier, err = attest.NewVerifier(attest.VerifierConfig{Roots: []*x509.Certificate{root}, Keys: ks}); err != nil {
		return "", err
	}
	d.roots = x509.NewCertPool()
	d.roots.AddCert(root)
	return fmt.Sprintf("verifier trusts the development CA %q (development only) and pins %d attestation key(s) from %s", root.Subject.CommonName, len(ks.Keys), server.JWKSPath), nil
}

func (d *attestDemo) keyAttestation(ctx context.Context) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	jwt, err := c.KeyAttestation(ctx, []string{d.keys[0].KID, d.keys[1].KID}, "issuer-c-nonce")
	if err != nil {
		return "", err
	}
	ka, err := d.verifier.VerifyKeyAttestation(jwt, attest.KeyAttestationOptions{Nonce: "issuer-c-nonce"})
	if err != nil {
		return "", err
	}
	d.kaRef = *ka.Status
	storage := "nothing (the device's assurance is not a certified level)"
	if len(ka.Claims.KeyStorage) > 0 {
		storage = strings.Join(ka.Claims.KeyStorage, ",")
	}
	return fmt.Sprintf("key-attestation+jwt for %d keys verified offline (x5c to the root); key_storage claims %s; key_storage_status %s#%d until %s",
		len(ka.Keys), storage, d.kaRef.URI, d.kaRef.Idx, ka.StatusExp.Format(time.DateOnly)), nil
}

func (d *attestDemo) walletAttestation(ctx context.Context) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	jwt, err := c.WalletAttestation(ctx, d.keys[0].KID)
	if err != nil {
		return "", err
	}
	wa, err := d.verifier.VerifyWalletAttestation(jwt, attest.WalletAttestationOptions{})
	if err != nil {
		return "", err
	}
	d.wiaRef = *wa.Claims.ClientStatus.Status.StatusList
	// The PoP, signed through R2PS with the wallet instance key (cnf.jwk).
	const as = "https://issuer.example"
	pop, err := attest.NewClientAttestationPoP(d.sess.Signer(ctx, d.keys[0]), attest.PoPInput{Audience: as, Challenge: "as-challenge"})
	if err != nil {
		return "", err
	}
	if _, err := d.verifier.VerifyClientAttestationPoP(ctx, pop, wa, attest.PoPOptions{Audience: as, Challenge: "as-challenge", Seen: newSeen()}); err != nil {
		return "", err
	}
	return fmt.Sprintf("oauth-client-attestation+jwt (sub %s, %v) and its PoP signed on the device through R2PS, both verified; client_status %s#%d",
		wa.Claims.Subject, time.Duration(wa.Claims.Expiry-wa.Claims.IssuedAt)*time.Second, d.wiaRef.URI, d.wiaRef.Idx), nil
}

func (d *attestDemo) proofOfAssociation(ctx context.Context) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	jwt, err := c.ProofOfAssociation(ctx, []string{d.keys[0].KID, d.keys[1].KID}, "https://rp.example", "rp-nonce")
	if err != nil {
		return "", err
	}
	if _, err := d.verifier.VerifyProofOfAssociation(jwt, attest.ProofOfAssociationOptions{Audience: "https://rp.example", Nonce: "rp-nonce"}); err != nil {
		return "", err
	}
	return "wsca-poa+jwt: both keys held by this WSCA for one unit, verified offline", nil
}

// statusOf reads an entry as a verifier does: fetch the list at its URI,
// verify the token (JWT, then CWT) and read the index.
func (d *attestDemo) statusOf(ctx context.Context, ref attest.StatusRef) (jwt, cwt statuslist.Status, err error) {
	v := &statuslist.Verifier{Roots: d.roots}
	b, err := d.fetch(ctx, ref.URI, "application/statuslist+jwt")
	if err != nil {
		return 0, 0, err
	}
	vj, err := v.VerifyJWT(b, ref.URI)
	if err != nil {
		return 0, 0, err
	}
	if b, err = d.fetch(ctx, ref.URI, "application/statuslist+cwt"); err != nil {
		return 0, 0, err
	}
	vc, err := v.VerifyCWT(b, ref.URI)
	if err != nil {
		return 0, 0, err
	}
	if jwt, err = vj.Status(ref.Idx); err != nil {
		return 0, 0, err
	}
	cwt, err = vc.Status(ref.Idx)
	return jwt, cwt, err
}

// expect waits (the publisher debounces) until the key attestation's and
// the WIA's entries show want in both token formats.
func (d *attestDemo) expect(want statuslist.Status) func(context.Context) (string, error) {
	names := map[statuslist.Status]string{0: "VALID", 1: "INVALID", 2: "SUSPENDED"}
	return func(ctx context.Context) (string, error) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			kj, kc, err := d.statusOf(ctx, d.kaRef)
			if err != nil {
				return "", err
			}
			wj, wc, err := d.statusOf(ctx, d.wiaRef)
			if err != nil {
				return "", err
			}
			if kj == want && kc == want && wj == want && wc == want {
				return fmt.Sprintf("statuslist+jwt and statuslist+cwt verified; key attestation and WIA entries are %s", names[want]), nil
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("status lists show KA %d/%d, WIA %d/%d; want %d", kj, kc, wj, wc, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// setState is the operator's suspend or unsuspend (admin API's).
func (d *attestDemo) setState(st store.UnitState) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		if err := d.srv.svc.Units.SetState(ctx, d.unit, st); err != nil {
			return "", err
		}
		d.srv.stack.Publisher.Notify()
		if st == store.UnitActive {
			return "operator unsuspends the unit", nil
		}
		return "operator suspends the unit (its sessions end)", nil
	}
}

// revoke is the holder's revocation, in a new PIN session.
func (d *attestDemo) revoke(ctx context.Context) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	s, err := c.Login(ctx, demoPIN, client.LoginOptions{})
	if err != nil {
		return "", err
	}
	defer clear(s.Key)
	if err := s.RevokeUnit(ctx, d.unit, "demo"); err != nil {
		return "", err
	}
	return "the holder revokes the unit with the PIN (wallet_unit_revoke, 2FA): final", nil
}

func (d *attestDemo) refused(ctx context.Context) (string, error) {
	c, err := d.wallet.client()
	if err != nil {
		return "", err
	}
	_, err = c.KeyAttestation(ctx, []string{d.keys[0].KID}, "")
	if !client.IsCode(err, r2ps.CodeAccessDenied) {
		return "", fmt.Errorf("attestation for a revoked unit gave %v, want %s", err, r2ps.CodeAccessDenied)
	}
	_, err = c.Login(ctx, demoPIN, client.LoginOptions{})
	if !client.IsCode(err, r2ps.CodeAccessDenied) {
		return "", fmt.Errorf("login of a revoked unit gave %v, want %s", err, r2ps.CodeAccessDenied)
	}
	return "a new attestation and a login are refused with " + r2ps.CodeAccessDenied, nil
}

// seen is an in-memory PoP jti set, as a verifier keeps.
type seen struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

func newSeen() *seen { return &seen{ids: map[string]time.Time{}} }

func (s *seen) Add(_ context.Context, id string, until time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false, nil
	}
	s.ids[id] = until
	return true, nil
}
