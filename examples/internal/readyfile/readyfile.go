// Package readyfile tells a harness which address a server bound, atomically.
package readyfile

import (
	"os"
	"path/filepath"
)

// Write puts addr (and a newline) into path via a temporary file in the same directory and
// a rename, so a reader never sees a partial address. An empty path does nothing.
func Write(path, addr string) error {
	if path == "" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err = f.WriteString(addr + "\n"); err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
