package fido2

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Client data types (WebAuthn §5.8.1).
const (
	typeCreate = "webauthn.create"
	typeGet    = "webauthn.get"
)

// clientData is the part of CollectedClientData the plugin reads; other
// members (topOrigin, members a browser adds) are ignored.
type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// buildClientData returns the clientDataJSON the native path hashes, in
// the member order browsers use.
func buildClientData(typ string, challenge []byte, origin string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(clientData{Type: typ, Challenge: base64.RawURLEncoding.EncodeToString(challenge), Origin: origin})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// checkClientData checks a browser's clientDataJSON: its type, its
// challenge (exactly ours), an origin the plugin accepts, and that it was
// not made in a cross-origin frame.
func (p *Plugin) checkClientData(b []byte, typ string, challenge []byte) error {
	if len(b) > maxClientData || !utf8.Valid(b) {
		return fmt.Errorf("%w: client data of %d bytes", ErrMalformed, len(b))
	}
	var cd clientData
	if err := json.Unmarshal(b, &cd); err != nil {
		return fmt.Errorf("%w: client data: %v", ErrMalformed, err)
	}
	if cd.Type != typ {
		return fmt.Errorf("%w: client data type %q", ErrRejected, cd.Type)
	}
	got, err := base64.RawURLEncoding.Strict().DecodeString(cd.Challenge)
	if err != nil || !bytes.Equal(got, challenge) {
		return fmt.Errorf("%w: client data names another challenge", ErrRejected)
	}
	if !p.originAllowed(cd.Origin) {
		return fmt.Errorf("%w: origin %q", ErrRejected, cd.Origin)
	}
	if cd.CrossOrigin {
		return fmt.Errorf("%w: made in a cross-origin frame", ErrRejected)
	}
	return nil
}

// originAllowed accepts the configured origin, and any origin whose host
// is the RP id or a subdomain of it (the origins a browser lets use the
// RP id, WebAuthn §5.1.3), over https, or over http on localhost (which
// browsers treat as secure).
func (p *Plugin) originAllowed(o string) bool {
	return o == p.origin || p.originOnRP(o)
}

// originOnRP reports whether o is an origin on the RP id (https; http on
// localhost).
func (p *Plugin) originOnRP(o string) bool {
	u, err := url.Parse(o)
	if err != nil || u.Opaque != "" || u.User != nil || u.Path != "" || u.ForceQuery || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host != p.rpID && !strings.HasSuffix(host, "."+p.rpID) {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return host == "localhost" || strings.HasSuffix(host, ".localhost")
	}
	return false
}
