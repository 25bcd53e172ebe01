// Package datadir lays out the data directory that wscad and wsca use when
// no store or device is configured: the zero-setup defaults.
//
//	<dir>/wsca.db             SQLite store
//	<dir>/device.uri          the device chosen on first use (kept, so a later
//	                          install of SoftHSM does not orphan the keys)
//	<dir>/soft/               soft keystore: master.key and one file per key
//	<dir>/softhsm/            SoftHSM: softhsm2.conf, tokens/, pin, so-pin
//
// On first use the device is a SoftHSM token if SoftHSM is installed and
// this build has PKCS#11 support, and the soft keystore otherwise.
package datadir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsca/wsca/device/pkcs11"
	"github.com/wsca/wsca/device/soft"
)

// SoftHSMTokenLabel is the label of the token made in the data directory.
const SoftHSMTokenLabel = "wsca"

// SoftHSMModules are the places Debian and others install libsofthsm2.
var SoftHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
}

// Backend choices for Init.
const (
	Auto    = "auto"
	SoftHSM = "softhsm"
	Soft    = "soft"
)

// Dir is a data directory.
type Dir string

// Create makes the directory (0700) if it does not exist.
func (d Dir) Create() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	return nil
}

// StoreDSN is the default store: SQLite in the directory.
func (d Dir) StoreDSN() string { return "sqlite:" + filepath.Join(string(d), "wsca.db") }

// SoftHSMConf is the SoftHSM configuration file of the directory's token.
// SoftHSM reads the SOFTHSM2_CONF environment variable when the library
// initialises, so a command using this token sets it first.
func (d Dir) SoftHSMConf() string { return filepath.Join(string(d), "softhsm", "softhsm2.conf") }

func (d Dir) deviceFile() string { return filepath.Join(string(d), "device.uri") }

// Defaults is what a command runs on when nothing is configured.
type Defaults struct {
	StoreDSN  string
	DeviceURI string
	// SoftHSMConf is set when DeviceURI is the directory's SoftHSM token.
	SoftHSMConf string
	// Created is true when this call made the device.
	Created bool
}

// Describe says what the defaults are, for the first log line.
func (d Defaults) Describe() string {
	dev := "soft keystore (software keys, development only)"
	if d.SoftHSMConf != "" {
		dev = "SoftHSM token " + SoftHSMTokenLabel + " via PKCS#11"
	}
	return "embedded defaults: SQLite store, " + dev
}

// Load returns the directory's defaults, creating the directory and the
// device on first use. backend is Auto, SoftHSM or Soft; it only matters the
// first time.
func Load(dir Dir, backend string) (Defaults, error) {
	if err := dir.Create(); err != nil {
		return Defaults{}, err
	}
	def := Defaults{StoreDSN: dir.StoreDSN()}
	data, err := os.ReadFile(dir.deviceFile())
	switch {
	case err == nil:
		def.DeviceURI = strings.TrimSpace(string(data))
	case errors.Is(err, fs.ErrNotExist):
		if def.DeviceURI, err = dir.initDevice(backend); err != nil {
			return Defaults{}, err
		}
		def.Created = true
		if err := os.WriteFile(dir.deviceFile(), []byte(def.DeviceURI+"\n"), 0o600); err != nil {
			return Defaults{}, fmt.Errorf("datadir: %w", err)
		}
	default:
		return Defaults{}, fmt.Errorf("datadir: %w", err)
	}
	if strings.HasPrefix(def.DeviceURI, "pkcs11:") && strings.Contains(def.DeviceURI, filepath.Join(string(dir), "softhsm")) {
		def.SoftHSMConf = dir.SoftHSMConf()
	}
	return def, nil
}

func (d Dir) initDevice(backend string) (string, error) {
	module := softHSMModule()
	switch backend {
	case Auto:
		if module == "" || !pkcs11.Available {
			return d.initSoft()
		}
		return d.initSoftHSM(module)
	case SoftHSM:
		if module == "" {
			return "", errors.New("datadir: SoftHSM is not installed (apt-get install softhsm2)")
		}
		if !pkcs11.Available {
			return "", pkcs11.ErrNotCompiled
		}
		return d.initSoftHSM(module)
	case Soft:
		return d.initSoft()
	}
	return "", fmt.Errorf("datadir: unknown device backend %q (auto, softhsm, soft)", backend)
}

func softHSMModule() string {
	for _, m := range SoftHSMModules {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	return ""
}

func (d Dir) initSoft() (string, error) {
	dir := filepath.Join(string(d), "soft")
	if _, err := soft.Init(soft.Config{Dir: dir}); err != nil {
		return "", err
	}
	return "soft:" + dir, nil
}

// initSoftHSM makes a SoftHSM configuration and token in the directory,
// with random PINs kept in 0600 files next to it.
func (d Dir) initSoftHSM(module string) (string, error) {
	base := filepath.Join(string(d), "softhsm")
	if err := os.MkdirAll(filepath.Join(base, "tokens"), 0o700); err != nil {
		return "", fmt.Errorf("datadir: %w", err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\nslots.mechanisms = ALL\nlibrary.reset_on_fork = false\n",
		filepath.Join(base, "tokens"))
	if err := os.WriteFile(d.SoftHSMConf(), []byte(conf), 0o600); err != nil {
		return "", fmt.Errorf("datadir: %w", err)
	}
	pin, soPIN := randomPIN(), randomPIN()
	pinFile := filepath.Join(base, "pin")
	for path, v := range map[string]string{pinFile: pin, filepath.Join(base, "so-pin"): soPIN} {
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("datadir: %w", err)
		}
	}
	if err := os.Setenv("SOFTHSM2_CONF", d.SoftHSMConf()); err != nil {
		return "", fmt.Errorf("datadir: %w", err)
	}
	if _, err := pkcs11.InitToken(module, SoftHSMTokenLabel, soPIN, pin); err != nil {
		return "", err
	}
	// SoftHSM is software, and the URI says so: a PKCS#11 token claims
	// only the assurance its configuration declares.
	return fmt.Sprintf("pkcs11:token=%s;x-wsca-assurance=software?module-path=%s&pin-source=file:%s", SoftHSMTokenLabel, module, pinFile), nil
}

func randomPIN() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
