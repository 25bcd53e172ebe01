package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

// sessionGone reports the server's answer to a session it does not know
// (ended, expired or purged): UNAUTHORIZED outside the envelope.
func sessionGone(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Code == r2ps.CodeUnauthorized && ce.Status == http.StatusUnauthorized
}

// withSession runs fn in the saved PIN session. A session the server no
// longer knows is forgotten and reported as expired.
func (f *walletFlags) withSession(ctx context.Context, fn func(*client.Session) error) error {
	w, err := f.load()
	if err != nil {
		return err
	}
	defer w.forgetSession() // clears the session key in memory; the file keeps it
	s, err := w.resume(time.Now())
	if err != nil {
		return err
	}
	defer clear(s.Key)
	err = fn(s)
	if !sessionGone(err) {
		return err
	}
	w.forgetSession()
	if serr := w.save(); serr != nil {
		return fmt.Errorf("%w (forgetting it: %v)", errSessionExpired, serr)
	}
	return errSessionExpired
}

func walletKeygen(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "keygen", false)
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	return f.withSession(ctx, func(s *client.Session) error {
		k, err := s.Generate(ctx)
		if err != nil {
			return explain("keygen", err, "")
		}
		j, err := toJWK(k.Public, device.KID(k.KID))
		if err != nil {
			return err
		}
		return printResult(e, f.asJSON, map[string]any{"kid": k.KID, "public_key": j}, func(out io.Writer) { fmt.Fprintln(out, k.KID) })
	})
}

func walletSign(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "sign", false)
	kid := f.fs.String("kid", "", "`kid` of the key to sign with")
	digestHex := f.fs.String("digest", "", "SHA-256 `digest` to sign, in hex")
	file := f.fs.String("file", "", "`file` to hash with SHA-256 and sign")
	verify := f.fs.Bool("verify", false, "verify the signature with the key's public key from the server's key list")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if err := f.missing(e, "kid"); err != nil {
		return err
	}
	if *digestHex != "" && *file != "" {
		fmt.Fprintln(e.stderr, "wsca: sign takes --digest or --file, not both")
		return errUsage
	}
	digest, err := toBeSigned(e, *digestHex, *file)
	if err != nil {
		return err
	}
	return f.withSession(ctx, func(s *client.Session) error {
		sig, err := s.Sign(ctx, *kid, digest)
		if err != nil {
			return explain("sign", err, "")
		}
		if *verify {
			if err := verifyWithListed(ctx, s, *kid, digest, sig); err != nil {
				return err
			}
		}
		out := map[string]any{"kid": *kid, "digest": hex.EncodeToString(digest),
			"signature": base64.StdEncoding.EncodeToString(sig)}
		if *verify {
			out["verified"] = true
		}
		return printResult(e, f.asJSON, out, func(o io.Writer) {
			fmt.Fprintln(o, out["signature"])
			if *verify {
				fmt.Fprintf(e.stderr, "signature verified with the public key of %s\n", *kid)
			}
		})
	})
}

// toBeSigned is the digest to sign: given in hex, or SHA-256 of a file or
// of stdin.
func toBeSigned(e env, digestHex, file string) ([]byte, error) {
	if digestHex != "" {
		d, err := hex.DecodeString(digestHex)
		if err != nil || len(d) != sha256.Size {
			return nil, errors.New("--digest: want 64 hex digits (a SHA-256 digest)")
		}
		return d, nil
	}
	in := e.stdin
	if file != "" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		in = fh
	} else if _, isTerm := (prompter{in: e.stdin}).terminal(); isTerm {
		return nil, errors.New("sign: give --digest or --file, or pipe the data to sign into stdin")
	}
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return nil, fmt.Errorf("sign: reading the data: %w", err)
	}
	return h.Sum(nil), nil
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

func walletECDH(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "ecdh", false)
	kid := f.fs.String("kid", "", "`kid` of the key to agree with")
	peerText := f.fs.String("peer", "", "peer's P-256 public `point` (SEC 1, compressed or not) in hex or base64")
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	if err := f.missing(e, "kid", "peer"); err != nil {
		return err
	}
	peer, err := parsePeerPoint(*peerText)
	if err != nil {
		return err
	}
	return f.withSession(ctx, func(s *client.Session) error {
		z, err := s.ECDH(ctx, *kid, peer)
		if err != nil {
			return explain("ecdh", err, "")
		}
		defer clear(z)
		secret := base64.StdEncoding.EncodeToString(z)
		return printResult(e, f.asJSON, map[string]string{"kid": *kid, "shared_secret": secret}, func(o io.Writer) { fmt.Fprintln(o, secret) })
	})
}

// parsePeerPoint reads a SEC 1 point in hex or in any base64 flavour. The
// server checks that it is on the curve; this checks only its shape.
func parsePeerPoint(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err = enc.DecodeString(s); err == nil {
				break
			}
		}
	}
	switch {
	case err != nil:
		return nil, errors.New("--peer: not hex or base64")
	case len(b) == 65 && b[0] == 4, len(b) == 33 && (b[0] == 2 || b[0] == 3):
		return b, nil
	}
	return nil, fmt.Errorf("--peer: %d bytes are no SEC 1 P-256 point (want 65 starting 04, or 33 starting 02 or 03)", len(b))
}

type remoteKeyRow struct {
	KID     string    `json:"kid"`
	Created time.Time `json:"created"`
	JWK     jwk       `json:"public_key"`
}

func walletKeylist(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "keylist", false)
	if _, err := f.parse(e, args, 0); err != nil {
		return err
	}
	return f.withSession(ctx, func(s *client.Session) error {
		keys, err := s.ListKeys(ctx)
		if err != nil {
			return explain("keylist", err, "")
		}
		rows := []remoteKeyRow{}
		for _, k := range keys {
			j, err := toJWK(k.Public, device.KID(k.KID))
			if err != nil {
				return err
			}
			rows = append(rows, remoteKeyRow{KID: k.KID, Created: k.Created.UTC(), JWK: j})
		}
		return printResult(e, f.asJSON, rows, func(o io.Writer) {
			for _, r := range rows {
				fmt.Fprintf(o, "%s %s\n", r.KID, r.Created.Format(time.RFC3339))
			}
		})
	})
}

func walletKeydelete(ctx context.Context, e env, args []string) error {
	f := newWalletFlags(e, "keydelete", false)
	pos, err := f.parse(e, args, 1)
	if err != nil {
		return err
	}
	return f.withSession(ctx, func(s *client.Session) error {
		if err := s.DeleteKey(ctx, pos[0]); err != nil {
			return explain("keydelete", err, "")
		}
		return printResult(e, f.asJSON, map[string]any{"kid": pos[0], "deleted": true}, func(o io.Writer) {
			fmt.Fprintf(o, "key %s deleted\n", pos[0])
		})
	})
}
