package readyfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteIsAtomicAndOverwrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "addr")
	for _, addr := range []string{"127.0.0.1:1234", "127.0.0.1:5678"} {
		if err := Write(path, addr); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != addr+"\n" {
			t.Fatalf("%q %v", b, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary file left behind: %v", entries)
	}
}

func TestEmptyPathDoesNothing(t *testing.T) {
	if err := Write("", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
}
