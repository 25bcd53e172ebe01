// Package atomicfile writes small files durably and atomically: the data
// goes to a synced temporary file in the same directory, which is then
// linked (Create: fails if the name exists, so concurrent writers in
// several processes never overwrite each other) or renamed (Replace) into
// place, and the directory is synced. A crash leaves the old file or the
// new one, never a part of either. Used by the wallet side (the key
// manager's bindings, softkey files, journals) and the CLI.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists: Create found a file under the name.
var ErrExists = fs.ErrExist

// Create writes data to path with perm unless a file is there
// (errors.Is(err, ErrExists)).
func Create(path string, data []byte, perm fs.FileMode) error {
	tmp, err := temp(filepath.Dir(path), data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("atomicfile: %s: %w", filepath.Base(path), ErrExists)
		}
		return fmt.Errorf("atomicfile: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// Replace writes data to path with perm, replacing any file there.
func Replace(path string, data []byte, perm fs.FileMode) error {
	tmp, err := temp(filepath.Dir(path), data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("atomicfile: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// Remove removes path (fs.ErrNotExist if it is not there) and syncs its
// directory.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// temp writes data to a new synced file in dir and returns its path. Its
// name starts with a dot, so directory listings that look for a suffix
// never take it for a record.
func temp(dir string, data []byte, perm fs.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("atomicfile: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("atomicfile: %w", err)
	}
	return f.Name(), nil
}

// SyncDir syncs a directory, so that a link, rename or removal in it is
// durable. File systems (and platforms, such as js/wasm) that cannot sync a
// directory are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("atomicfile: sync %s: %w", filepath.Base(dir), err)
	}
	return nil
}
