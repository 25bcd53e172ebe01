package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/wsca/wsca/r2ps"
	"github.com/wsca/wsca/r2ps/client"
)

// The wallet state file is what `wsca enroll` writes and every other
// wallet command reads: the server, the unit and context, the client
// signing key (CSK) and client agreement key (CAK), the server keys pinned
// at enrolment, and the current PIN session. It holds secrets (the two
// private keys and the session key), so it is written atomically with mode
// 0600 and a file that group or others may read is refused.
//
//	{
//	  "version": 1,
//	  "url": "https://wscd.example", "unit": "u-…", "context": "hsm",
//	  "enrolled": true,
//	  "csk": "-----BEGIN PRIVATE KEY-----…",   PKCS#8 PEM, P-256
//	  "cak": "-----BEGIN PRIVATE KEY-----…",   PKCS#8 PEM, P-256
//	  "server_keys": {"signing": <JWK>, "agreement": <JWK>},   kid = RFC 7638 thumbprint
//	  "session": {"id": "…", "key": "<base64url>", "task": "", "expires_at": "…"}
//	}
const stateVersion = 1

// stateFile is the JSON form of the state file.
type stateFile struct {
	Version  int           `json:"version"`
	URL      string        `json:"url"`
	Unit     string        `json:"unit"`
	Context  string        `json:"context"`
	Enrolled bool          `json:"enrolled"`
	CSK      string        `json:"csk"`
	CAK      string        `json:"cak"`
	Server   pinnedKeys    `json:"server_keys"`
	Session  *sessionEntry `json:"session,omitempty"`
}

type pinnedKeys struct {
	Signing   jose.JSONWebKey `json:"signing"`
	Agreement jose.JSONWebKey `json:"agreement"`
}

type sessionEntry struct {
	ID        string    `json:"id"`
	Key       string    `json:"key"`
	Task      string    `json:"task,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// wallet is a parsed state file. It holds private keys: it logs as its
// public part only.
type wallet struct {
	path     string
	url      string
	unit     string
	context  string
	enrolled bool
	csk      *ecdsa.PrivateKey
	cak      *ecdh.PrivateKey
	server   client.ServerKeys
	session  *savedSession
	// hc is the HTTP client (nil: the client package's default); it is not
	// saved.
	hc *http.Client
}

// savedSession is the PIN session kept between commands.
type savedSession struct {
	id        string
	key       []byte
	task      string
	expiresAt time.Time
}

// LogValue keeps the keys and the session key out of logs.
func (w *wallet) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", w.url), slog.String("unit", w.unit),
		slog.String("context", w.context), slog.Bool("session", w.session != nil))
}

// String keeps the keys out of fmt output.
func (w *wallet) String() string {
	return fmt.Sprintf("wallet{unit %s, context %s, server %s}", w.unit, w.context, w.url)
}

var _ slog.LogValuer = (*wallet)(nil)

// defaultStatePath is $XDG_CONFIG_HOME/wsca/client.json, or
// ~/.config/wsca/client.json.
func defaultStatePath(lookup func(string) (string, bool)) (string, error) {
	if d, ok := lookup("XDG_CONFIG_HOME"); ok && filepath.IsAbs(d) {
		return filepath.Join(d, "wsca", "client.json"), nil
	}
	if h, ok := lookup("HOME"); ok && h != "" {
		return filepath.Join(h, ".config", "wsca", "client.json"), nil
	}
	return "", errors.New("no state file: give --state FILE (or WSCA_STATE), or set HOME")
}

// errNoState is returned by loadWallet when the file does not exist.
var errNoState = errors.New("no wallet state")

// loadWallet reads and checks the state file at path.
func loadWallet(path string) (*wallet, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: run wsca enroll", errNoState, path)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("state: %s is not a regular file", path)
	}
	// Windows reports no Unix permission bits; there the directory's ACL
	// is what protects the file.
	if perm := st.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("state: %s holds private keys but group or others may read it (mode %04o): chmod 600 it", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	defer clear(data)
	var sf stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return nil, fmt.Errorf("state: %s: %v", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("state: %s: data after the JSON object", path)
	}
	w, err := sf.parse()
	if err != nil {
		return nil, fmt.Errorf("state: %s: %v", path, err)
	}
	w.path = path
	return w, nil
}

func (sf *stateFile) parse() (*wallet, error) {
	if sf.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", sf.Version, stateVersion)
	}
	if sf.URL == "" || sf.Unit == "" || sf.Context == "" {
		return nil, errors.New("url, unit and context are required")
	}
	w := &wallet{url: sf.URL, unit: sf.Unit, context: sf.Context, enrolled: sf.Enrolled}
	var err error
	if w.csk, err = parsePrivateKey(sf.CSK, "csk"); err != nil {
		return nil, err
	}
	cak, err := parsePrivateKey(sf.CAK, "cak")
	if err != nil {
		return nil, err
	}
	if w.cak, err = cak.ECDH(); err != nil {
		return nil, fmt.Errorf("cak: %v", err)
	}
	if w.server.Signing, w.server.SigningKID, err = parsePinned(sf.Server.Signing, "sig"); err != nil {
		return nil, err
	}
	if w.server.Agreement, w.server.AgreementKID, err = parsePinned(sf.Server.Agreement, "enc"); err != nil {
		return nil, err
	}
	if s := sf.Session; s != nil {
		key, err := base64.RawURLEncoding.Strict().DecodeString(s.Key)
		if err != nil || len(key) != 32 || s.ID == "" {
			return nil, errors.New("session: want an id and a 32-byte key in unpadded base64url")
		}
		w.session = &savedSession{id: s.ID, key: key, task: s.Task, expiresAt: s.ExpiresAt}
	}
	return w, nil
}

// parsePrivateKey reads a P-256 private key in PKCS#8 PEM.
func parsePrivateKey(pemText, name string) (*ecdsa.PrivateKey, error) {
	b, rest := pem.Decode([]byte(pemText))
	if b == nil || b.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: want one PKCS#8 PEM block (PRIVATE KEY)", name)
	}
	defer clear(b.Bytes)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve.Params().Name != "P-256" {
		return nil, fmt.Errorf("%s: not a P-256 key", name)
	}
	return ek, nil
}

func marshalPrivateKey(k any) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	defer clear(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// parsePinned checks a pinned server key: P-256, public, the given use,
// and its kid its RFC 7638 thumbprint.
func parsePinned(j jose.JSONWebKey, use string) (*ecdsa.PublicKey, string, error) {
	pub, ok := j.Key.(*ecdsa.PublicKey)
	if !ok || j.Use != use || r2ps.Thumbprint(pub) != j.KeyID {
		return nil, "", fmt.Errorf("server_keys: the %s key is not a public P-256 JWK whose kid is its thumbprint", use)
	}
	return pub, j.KeyID, nil
}

// save writes the state file atomically (a temporary file in the same
// directory, synced, then renamed) with mode 0600.
func (w *wallet) save() error {
	sf, err := w.file()
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer clear(data)
	data = append(data, '\n')
	dir := filepath.Dir(w.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".client-*.json")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	name := tmp.Name()
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, w.path)
	}
	if err != nil {
		if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func (w *wallet) file() (*stateFile, error) {
	csk, err := marshalPrivateKey(w.csk)
	if err != nil {
		return nil, fmt.Errorf("state: csk: %w", err)
	}
	cak, err := marshalPrivateKey(w.cak)
	if err != nil {
		return nil, fmt.Errorf("state: cak: %w", err)
	}
	sf := &stateFile{
		Version: stateVersion, URL: w.url, Unit: w.unit, Context: w.context, Enrolled: w.enrolled,
		CSK: csk, CAK: cak,
		Server: pinnedKeys{
			Signing:   jose.JSONWebKey{Key: w.server.Signing, KeyID: w.server.SigningKID, Use: "sig"},
			Agreement: jose.JSONWebKey{Key: w.server.Agreement, KeyID: w.server.AgreementKID, Use: "enc"},
		},
	}
	if s := w.session; s != nil {
		sf.Session = &sessionEntry{ID: s.id, Key: base64.RawURLEncoding.EncodeToString(s.key), Task: s.task, ExpiresAt: s.expiresAt.UTC()}
	}
	return sf, nil
}

// forgetSession drops the session and clears its key.
func (w *wallet) forgetSession() {
	if w.session != nil {
		clear(w.session.key)
		w.session = nil
	}
}
