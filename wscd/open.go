package wscd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/device/soft"
)

// ErrDeviceURI is returned for a device URI that names no known backend.
var ErrDeviceURI = errors.New("wscd: bad device URI")

// OpenDevice opens the device a URI names:
//
//	pkcs11:token=…?module-path=…&pin-source=…   a PKCS#11 token (RFC 7512, see pkcs11.ParseURI)
//	soft:/var/lib/wsca/soft                     the software keystore in that directory
//	soft:/dir?master-key=/run/secrets/mk        … with its master key elsewhere
//
// The URI never appears in errors: it may carry a PIN.
func OpenDevice(ctx context.Context, uri string, log *slog.Logger) (device.Device, error) {
	scheme, rest, _ := strings.Cut(uri, ":")
	switch scheme {
	case "pkcs11":
		cfg, err := pkcs11.ParseURI(uri)
		if err != nil {
			return nil, err
		}
		d, err := pkcs11.Open(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		return d, nil
	case "soft":
		cfg, err := ParseSoftURI(rest)
		if err != nil {
			return nil, err
		}
		return soft.Open(cfg)
	}
	return nil, fmt.Errorf("%w: scheme must be pkcs11 or soft", ErrDeviceURI)
}

// ParseSoftURI parses the part of a soft: URI after the scheme.
func ParseSoftURI(rest string) (soft.Config, error) {
	path, query, _ := strings.Cut(rest, "?")
	path = strings.TrimPrefix(path, "//")
	if path == "" {
		return soft.Config{}, fmt.Errorf("%w: soft: needs a directory", ErrDeviceURI)
	}
	cfg := soft.Config{Dir: path}
	q, err := url.ParseQuery(query)
	if err != nil {
		return soft.Config{}, fmt.Errorf("%w: soft: bad query", ErrDeviceURI)
	}
	for k, v := range q {
		if k != "master-key" || len(v) != 1 || v[0] == "" {
			return soft.Config{}, fmt.Errorf("%w: soft: unknown or repeated attribute %q", ErrDeviceURI, k)
		}
		cfg.MasterKey = v[0]
	}
	return cfg, nil
}
