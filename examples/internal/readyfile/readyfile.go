// Package readyfile tells a harness which address a server bound, atomically.
package readyfile

import "os"

// Write puts addr into path via a temporary file and a rename, so a reader never sees a
// partial address. An empty path does nothing.
func Write(path, addr string) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
