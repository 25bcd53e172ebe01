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

// DeviceConfig is a device URI and what its operator declares about it,
// parsed and checked before anything is opened.
type DeviceConfig struct {
	scheme string
	pkcs11 pkcs11.Config
	soft   soft.Config
}

// ParseDeviceURI parses a device URI (see OpenDevice) and applies the
// declared assurance (--device-assurance; "" declares nothing). A PKCS#11
// token claims its URI's x-wsca-assurance or the declared one (both: they
// must agree), else device.AssuranceNotCertified; the soft keystore is
// software, and any other claim for it is an error. It opens nothing,
// though a pkcs11 pin-source file is read.
func ParseDeviceURI(uri, assurance string) (DeviceConfig, error) {
	var declared device.Assurance
	if assurance != "" {
		a, err := device.ParseAssurance(assurance)
		if err != nil {
			return DeviceConfig{}, err
		}
		declared = a
	}
	scheme, rest, _ := strings.Cut(uri, ":")
	c := DeviceConfig{scheme: scheme}
	switch scheme {
	case "pkcs11":
		cfg, err := pkcs11.ParseURI(uri)
		if err != nil {
			return DeviceConfig{}, err
		}
		if declared != "" {
			if cfg.Assurance != "" && cfg.Assurance != declared {
				return DeviceConfig{}, fmt.Errorf("%w: device assurance %s contradicts the URI's x-wsca-assurance=%s", device.ErrAssurance, declared, cfg.Assurance)
			}
			cfg.Assurance = declared
		}
		c.pkcs11 = cfg
		return c, nil
	case "soft":
		cfg, err := ParseSoftURI(rest)
		if err != nil {
			return DeviceConfig{}, err
		}
		if declared != "" && declared != device.AssuranceSoftware {
			return DeviceConfig{}, fmt.Errorf("%w: the soft keystore is software, not %s", device.ErrAssurance, declared)
		}
		c.soft = cfg
		return c, nil
	}
	return DeviceConfig{}, fmt.Errorf("%w: scheme must be pkcs11 or soft", ErrDeviceURI)
}

// OpenDevice opens the device a URI names:
//
//	pkcs11:token=…?module-path=…&pin-source=…   a PKCS#11 token (RFC 7512, see pkcs11.ParseURI)
//	soft:/var/lib/wsca/soft                     the software keystore in that directory
//	soft:/dir?master-key=/run/secrets/mk        … with its master key elsewhere
//
// The URI never appears in errors: it may carry a PIN.
func OpenDevice(ctx context.Context, uri string, log *slog.Logger) (device.Device, error) {
	c, err := ParseDeviceURI(uri, "")
	if err != nil {
		return nil, err
	}
	return c.Open(ctx, log)
}

// Open opens the device.
func (c DeviceConfig) Open(ctx context.Context, log *slog.Logger) (device.Device, error) {
	switch c.scheme {
	case "pkcs11":
		d, err := pkcs11.Open(ctx, c.pkcs11, log)
		if err != nil {
			return nil, err
		}
		return d, nil
	case "soft":
		return soft.Open(c.soft)
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
