// Package config is how both commands read their settings: command-line
// flags first, then WSCA_* environment variables, then an optional file of
// WSCA_*=value lines, then the defaults. Every value goes through its
// flag's own parser, so a malformed value in any of the three is an error
// at start, never a silent default.
package config

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wsca/wsca/device"
	"github.com/wsca/wsca/internal/datadir"
	"github.com/wsca/wsca/store"
	"github.com/wsca/wsca/wscd"
)

// EnvPrefix starts every environment variable the commands read.
const EnvPrefix = "WSCA_"

// EnvName is the variable that sets a flag: WSCA_ and the flag's name in
// upper case with '-' as '_' (--data-dir: WSCA_DATA_DIR).
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply sets every flag of fs not given on the command line from lookup
// (the environment) or else from file (values of a config file, may be
// nil). Unknown WSCA_ keys in the file are errors; unknown ones in the
// environment are left alone, as other tools may share the prefix.
func Apply(fs *flag.FlagSet, lookup func(string) (string, bool), file map[string]string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	known := map[string]bool{}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		key := EnvName(f.Name)
		known[key] = true
		if set[f.Name] {
			return
		}
		v, ok := lookup(key)
		src := "environment"
		if !ok {
			v, ok = file[key]
			src = "config file"
		}
		if !ok {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %v", src, key, err))
		}
	})
	for k := range file {
		if !known[k] {
			errs = append(errs, fmt.Errorf("config file: unknown setting %s", k))
		}
	}
	return errors.Join(errs...)
}

// ReadFile reads a config file of KEY=value lines; blank lines and lines
// starting with # are skipped. Values are taken verbatim (no quotes).
func ReadFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return parseFile(f)
}

func parseFile(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !strings.HasPrefix(k, EnvPrefix) {
			return nil, fmt.Errorf("config: line %d: want WSCA_NAME=value", n)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("config: line %d: %s repeated", n, k)
		}
		out[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return out, nil
}

// State is where a command's state lives: the store and the device, given
// explicitly or taken from the data directory's defaults.
type State struct {
	DataDir       string
	Store         string
	Device        string
	DeviceBackend string
	// DeviceAssurance is what the operator declares about the device's
	// key protection (see device.Assurance); empty declares nothing.
	DeviceAssurance string
}

// DefaultDataDir is the data directory when none is given.
const DefaultDataDir = "wsca-data"

// Bind registers the state flags on fs.
func (s *State) Bind(fs *flag.FlagSet) {
	fs.StringVar(&s.DataDir, "data-dir", DefaultDataDir, "data `directory` for the embedded defaults (SQLite store, device)")
	fs.StringVar(&s.Store, "store", "", "store `DSN`: sqlite:PATH or postgres://… (default: SQLite in the data directory)")
	fs.StringVar(&s.Device, "device", "", "device `URI`: pkcs11:token=…?module-path=…&pin-source=… or soft:DIR (default: the data directory's device)")
	fs.StringVar(&s.DeviceBackend, "device-backend", datadir.Auto, "device to create in a new data directory: auto (SoftHSM if installed, else soft), softhsm or soft")
	fs.StringVar(&s.DeviceAssurance, "device-assurance", "", "declared key protection of the device: software, not-certified (the default of a PKCS#11 token) or an iso_18045_* level; never detected")
}

// Check validates the state settings without creating or opening
// anything: the store DSN and device URI when given, the backend choice
// and the declared assurance.
func (s State) Check() error {
	switch s.DeviceBackend {
	case datadir.Auto, datadir.SoftHSM, datadir.Soft:
	default:
		return fmt.Errorf("device backend %q: want auto, softhsm or soft", s.DeviceBackend)
	}
	a, err := device.ParseAssurance(s.DeviceAssurance)
	if err != nil {
		return err
	}
	if s.Device == "" && s.DeviceBackend == datadir.Soft && s.DeviceAssurance != "" && a != device.AssuranceSoftware {
		return fmt.Errorf("%w: the soft keystore is software, not %s", device.ErrAssurance, a)
	}
	if s.Store != "" {
		if err := store.CheckDSN(s.Store); err != nil {
			return err
		}
	}
	if s.Device != "" {
		if _, err := wscd.ParseDeviceURI(s.Device, s.DeviceAssurance); err != nil {
			return err
		}
	}
	if s.Device == "" && s.DataDir == "" {
		return errors.New("no data directory and no device")
	}
	return nil
}

// Resolved is what State resolves to.
type Resolved struct {
	StoreDSN  string
	DeviceURI string
	// DeviceAssurance is State.DeviceAssurance.
	DeviceAssurance string
	// Defaults describes the embedded defaults in use, or is "" when both
	// store and device were given.
	Defaults string
	// ServerKeyPrefix is wscd.Config.Prefix: wscd.WSCAPrefix for a
	// WSCA-only instance, whose device is its own, never the wallet keys'.
	ServerKeyPrefix string
}

// Resolve fills in the data directory's defaults for what was not given,
// creating the directory and its device on first use: call Check first. When the default
// device is the directory's SoftHSM token it points SOFTHSM2_CONF at it.
func (s State) Resolve() (Resolved, error) {
	r := Resolved{StoreDSN: s.Store, DeviceURI: s.Device, DeviceAssurance: s.DeviceAssurance}
	if r.StoreDSN != "" && r.DeviceURI != "" {
		return r, nil
	}
	dir := datadir.Dir(s.DataDir)
	var parts []string
	if r.DeviceURI != "" {
		// An explicit device: the data directory gives only the store, and
		// its own device is neither made nor pointed at.
		if err := dir.Create(); err != nil {
			return r, err
		}
		r.StoreDSN = dir.StoreDSN()
		r.Defaults = "embedded defaults in " + s.DataDir + ": SQLite store"
		return r, nil
	}
	def, err := datadir.Load(dir, s.DeviceBackend)
	if err != nil {
		return r, err
	}
	if r.StoreDSN == "" {
		r.StoreDSN = def.StoreDSN
		parts = append(parts, "SQLite store")
	}
	r.DeviceURI = def.DeviceURI
	if def.SoftHSMConf != "" {
		if err := os.Setenv("SOFTHSM2_CONF", def.SoftHSMConf); err != nil {
			return r, err
		}
		parts = append(parts, "SoftHSM token "+datadir.SoftHSMTokenLabel+" via PKCS#11")
	} else {
		parts = append(parts, "soft keystore (software keys: development only)")
	}
	r.Defaults = "embedded defaults in " + s.DataDir + ": " + strings.Join(parts, ", ")
	return r, nil
}

// Opened holds what Open opened.
type Opened struct {
	Store  *store.Store
	Device device.Device
	WSCD   *wscd.Services
}

// Close closes the device and the store.
func (o *Opened) Close() error {
	return errors.Join(o.Device.Close(), o.Store.Close())
}

// Open opens the store and the device and builds the WSCD services; reg, if
// not nil, receives its metrics.
func Open(ctx context.Context, r Resolved, log *slog.Logger, reg prometheus.Registerer) (*Opened, error) {
	dc, err := wscd.ParseDeviceURI(r.DeviceURI, r.DeviceAssurance)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, r.StoreDSN)
	if err != nil {
		return nil, err
	}
	dev, err := dc.Open(ctx, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	cfg := wscd.Config{Device: dev, Store: st, Logger: log, Prefix: r.ServerKeyPrefix}
	if reg != nil {
		if cfg.Metrics, err = wscd.NewMetrics(reg, dev); err != nil {
			dev.Close()
			st.Close()
			return nil, err
		}
	}
	svc, err := wscd.New(cfg)
	if err != nil {
		dev.Close()
		st.Close()
		return nil, err
	}
	return &Opened{Store: st, Device: dev, WSCD: svc}, nil
}

// Logger makes the process logger: format json or text, level debug, info,
// warn or error.
func Logger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}
