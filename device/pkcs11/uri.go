package pkcs11

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/wsca/wsca/device"
)

// DefaultSessions is the session pool size when the URI does not set
// x-sessions. SoftHSM gains nothing past one busy session; a network HSM
// wants more (vendors suggest 30–60 outstanding requests).
const DefaultSessions = 4

// MaxPINFileSize bounds a pin-source file.
const MaxPINFileSize = 256

// ErrNotCompiled is returned by Open in builds without cgo or with the
// nopkcs11 tag: the PKCS#11 backend loads a C library and needs cgo.
var ErrNotCompiled = errors.New("pkcs11: this build has no PKCS#11 support (built without cgo or with -tags nopkcs11)")

// ErrURI is returned for a malformed or unsupported PKCS#11 URI. Its
// messages never contain the URI itself, which may hold a PIN.
var ErrURI = errors.New("pkcs11: bad URI")

// Config selects a token and how to log in to it.
type Config struct {
	// Module is the path of the PKCS#11 library.
	Module string
	// Exactly one of TokenLabel, Serial and SlotID selects the token.
	TokenLabel string
	Serial     string
	SlotID     *uint
	// PIN is the user PIN. It is never logged (Config is a slog.LogValuer).
	PIN string
	// Sessions is the session pool size; 0 means DefaultSessions.
	Sessions int
	// Assurance is what the token claims about its key protection, as
	// its operator declared (x-wsca-assurance); empty means
	// device.AssuranceNotCertified. The token itself is never asked.
	Assurance device.Assurance
	// Storage is device.StorageToken (empty means so) or
	// device.StorageWrapped (x-wsca-storage); the three fields below
	// apply to wrapped storage only and must be empty otherwise.
	Storage device.Storage
	// WrapLabel is the CKA_LABEL of the AES wrapping key
	// (x-wsca-wrap-label); empty means DefaultWrapLabel.
	WrapLabel string
	// WrapMech wraps new keys (x-wsca-wrap-mech); empty means
	// WrapAESKeyWrapPad. A blob is always unwrapped with the mechanism it
	// names.
	WrapMech WrapMech
	// Cache bounds the unwrapped keys kept as session objects
	// (x-wsca-cache); 0 means DefaultCache.
	Cache int
}

func (c Config) storage() device.Storage {
	if c.Storage == "" {
		return device.StorageToken
	}
	return c.Storage
}

func (c Config) wrapLabel() string {
	if c.WrapLabel == "" {
		return DefaultWrapLabel
	}
	return c.WrapLabel
}

func (c Config) wrapMech() WrapMech {
	if c.WrapMech == "" {
		return WrapAESKeyWrapPad
	}
	return c.WrapMech
}

func (c Config) cache() int {
	if c.Cache <= 0 {
		return DefaultCache
	}
	return c.Cache
}

// assurance returns the configured assurance or its default.
func (c Config) assurance() device.Assurance {
	if c.Assurance == "" {
		return device.AssuranceNotCertified
	}
	return c.Assurance
}

// LogValue keeps the PIN out of logs.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("module", c.Module)}
	switch {
	case c.TokenLabel != "":
		attrs = append(attrs, slog.String("token", c.TokenLabel))
	case c.Serial != "":
		attrs = append(attrs, slog.String("serial", c.Serial))
	case c.SlotID != nil:
		attrs = append(attrs, slog.Uint64("slot_id", uint64(*c.SlotID)))
	}
	attrs = append(attrs, slog.Int("sessions", c.sessions()), slog.String("assurance", string(c.assurance())),
		slog.String("storage", string(c.storage())))
	if c.storage() == device.StorageWrapped {
		attrs = append(attrs, slog.String("wrap_label", c.wrapLabel()), slog.String("wrap_mech", string(c.wrapMech())),
			slog.Int("cache", c.cache()))
	}
	attrs = append(attrs, slog.Bool("pin_set", c.PIN != ""))
	return slog.GroupValue(attrs...)
}

// String describes the token without the PIN.
func (c Config) String() string {
	sel := "token=" + c.TokenLabel
	switch {
	case c.Serial != "":
		sel = "serial=" + c.Serial
	case c.SlotID != nil:
		sel = "slot-id=" + strconv.FormatUint(uint64(*c.SlotID), 10)
	}
	if c.storage() == device.StorageWrapped {
		sel += ", wrapped under " + strconv.Quote(c.wrapLabel())
	}
	return fmt.Sprintf("pkcs11 %s (%s)", sel, c.Module)
}

func (c Config) sessions() int {
	if c.Sessions <= 0 {
		return DefaultSessions
	}
	return c.Sessions
}

func (c Config) validate() error {
	n := 0
	if c.TokenLabel != "" {
		n++
	}
	if c.Serial != "" {
		n++
	}
	if c.SlotID != nil {
		n++
	}
	switch {
	case c.Module == "":
		return fmt.Errorf("%w: no module-path", ErrURI)
	case n == 0:
		return fmt.Errorf("%w: no token, serial or slot-id", ErrURI)
	case n > 1:
		return fmt.Errorf("%w: token, serial and slot-id are mutually exclusive", ErrURI)
	case c.PIN == "":
		return fmt.Errorf("%w: no pin-value or pin-source", ErrURI)
	case c.Sessions < 0 || c.Sessions > 1024:
		return fmt.Errorf("%w: x-sessions must be 1..1024", ErrURI)
	}
	if c.Assurance != "" {
		if _, err := device.ParseAssurance(string(c.Assurance)); err != nil {
			return fmt.Errorf("%w: x-wsca-assurance: %w", ErrURI, err)
		}
	}
	switch c.Storage {
	case "", device.StorageToken:
		if c.WrapLabel != "" || c.WrapMech != "" || c.Cache != 0 {
			return fmt.Errorf("%w: x-wsca-wrap-label, x-wsca-wrap-mech and x-wsca-cache need x-wsca-storage=wrapped", ErrURI)
		}
	case device.StorageWrapped:
		if c.WrapMech != "" {
			if _, err := ParseWrapMech(string(c.WrapMech)); err != nil {
				return err
			}
		}
		if c.Cache < 0 || c.Cache > MaxCache {
			return fmt.Errorf("%w: x-wsca-cache must be 1..%d", ErrURI, MaxCache)
		}
		if len(c.WrapLabel) > 64 {
			return fmt.Errorf("%w: x-wsca-wrap-label is longer than 64 bytes", ErrURI)
		}
	default:
		return fmt.Errorf("%w: x-wsca-storage must be token or wrapped", ErrURI)
	}
	return nil
}

// ParseURI parses an RFC 7512 PKCS#11 URI naming a token:
//
//	pkcs11:token=wsca;x-sessions=8?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin
//
// Path attributes (';'-separated): token, serial or slot-id (exactly one),
// and the vendor attributes x-sessions and x-wsca-assurance (what the
// token's key protection may be claimed to be: software, not-certified,
// the default, or an iso_18045_* level; see device.Assurance), and the
// storage of generated keys: x-wsca-storage (token, the default, or
// wrapped), with, for wrapped only, x-wsca-wrap-label (default
// DefaultWrapLabel), x-wsca-wrap-mech (aes-key-wrap-pad, the default, or
// aes-key-wrap) and x-wsca-cache (default DefaultCache). Query attributes ('&'-separated):
// module-path (required), and pin-value or pin-source (one of them;
// pin-source is a file path or file: URI, read once, trailing newline
// removed). Other RFC 7512 attributes that narrow a token (manufacturer,
// model, library-*) are rejected rather than ignored, so a URI never
// selects a different token than its author meant.
func ParseURI(uri string) (Config, error) {
	var c Config
	rest, ok := strings.CutPrefix(uri, "pkcs11:")
	if !ok {
		return c, fmt.Errorf("%w: scheme must be pkcs11", ErrURI)
	}
	path, query, _ := strings.Cut(rest, "?")
	seen := map[string]bool{}
	var pinSource string
	set := func(kind, k, v string) error {
		if seen[k] {
			return fmt.Errorf("%w: %s attribute %q repeated", ErrURI, kind, k)
		}
		seen[k] = true
		switch k {
		case "token":
			c.TokenLabel = v
		case "serial":
			c.Serial = v
		case "slot-id":
			id, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("%w: slot-id is not a number", ErrURI)
			}
			u := uint(id)
			c.SlotID = &u
		case "x-sessions":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("%w: x-sessions must be a positive number", ErrURI)
			}
			c.Sessions = n
		case "x-wsca-assurance":
			a, err := device.ParseAssurance(v)
			if err != nil || v == "" {
				return fmt.Errorf("%w: x-wsca-assurance must be software, not-certified or an iso_18045_* level", ErrURI)
			}
			c.Assurance = a
		case "x-wsca-storage":
			switch st := device.Storage(v); st {
			case device.StorageToken, device.StorageWrapped:
				c.Storage = st
			default:
				return fmt.Errorf("%w: x-wsca-storage must be token or wrapped", ErrURI)
			}
		case "x-wsca-wrap-label":
			if v == "" {
				return fmt.Errorf("%w: x-wsca-wrap-label is empty", ErrURI)
			}
			c.WrapLabel = v
		case "x-wsca-wrap-mech":
			m, err := ParseWrapMech(v)
			if err != nil {
				return err
			}
			c.WrapMech = m
		case "x-wsca-cache":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxCache {
				return fmt.Errorf("%w: x-wsca-cache must be 1..%d", ErrURI, MaxCache)
			}
			c.Cache = n
		case "module-path":
			c.Module = v
		case "pin-value":
			c.PIN = v
		case "pin-source":
			pinSource = v
		default:
			return fmt.Errorf("%w: unsupported %s attribute %q", ErrURI, kind, k)
		}
		return nil
	}
	for _, part := range splitNonEmpty(path, ";") {
		k, v, err := attr(part)
		if err != nil {
			return c, err
		}
		switch k {
		case "module-path", "pin-value", "pin-source":
			return c, fmt.Errorf("%w: %s belongs in the query", ErrURI, k)
		}
		if err := set("path", k, v); err != nil {
			return c, err
		}
	}
	for _, part := range splitNonEmpty(query, "&") {
		k, v, err := attr(part)
		if err != nil {
			return c, err
		}
		switch k {
		case "module-path", "pin-value", "pin-source":
		default:
			return c, fmt.Errorf("%w: %s belongs in the path", ErrURI, k)
		}
		if err := set("query", k, v); err != nil {
			return c, err
		}
	}
	if pinSource != "" {
		if c.PIN != "" {
			return c, fmt.Errorf("%w: pin-value and pin-source are mutually exclusive", ErrURI)
		}
		pin, err := readPIN(pinSource)
		if err != nil {
			return c, err
		}
		c.PIN = pin
	}
	return c, c.validate()
}

func splitNonEmpty(s, sep string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

func attr(part string) (string, string, error) {
	k, v, ok := strings.Cut(part, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("%w: attribute without a value", ErrURI)
	}
	v, err := url.PathUnescape(v)
	if err != nil {
		return "", "", fmt.Errorf("%w: bad percent-encoding in %s", ErrURI, k)
	}
	return strings.ToLower(k), v, nil
}

func readPIN(source string) (string, error) {
	path := source
	if p, ok := strings.CutPrefix(source, "file:"); ok {
		path = strings.TrimPrefix(p, "//")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%w: pin-source unreadable: %v", ErrURI, errors.Unwrap(err))
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, MaxPINFileSize+1))
	defer clear(buf)
	if err != nil {
		return "", fmt.Errorf("%w: pin-source unreadable", ErrURI)
	}
	if len(buf) > MaxPINFileSize {
		return "", fmt.Errorf("%w: pin-source file too large", ErrURI)
	}
	pin := strings.TrimRight(string(buf), "\r\n")
	if pin == "" {
		return "", fmt.Errorf("%w: pin-source file is empty", ErrURI)
	}
	return pin, nil
}
