// Package cmdtest runs a command's main function in a child process for tests: the test
// binary re-executes itself with an environment variable that makes TestMain call main
// instead of the tests, so the real flag parsing, printing and exit codes are exercised
// without a separate go build.
package cmdtest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const envVar = "RINGSIDE_CMDTEST_RUN_MAIN"

// Main is called from TestMain: it runs main and exits when this process is such a child,
// and otherwise runs the tests.
func Main(m *testing.M, main func()) {
	if os.Getenv(envVar) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Command is the command's main run with args, killed at cleanup.
func Command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), envVar+"=1")
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	return cmd
}

// Server starts the command (a server taking -ready-file) and returns the first line it
// printed and the address from its ready file.
func Server(t *testing.T, args ...string) (line, addr string) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "addr")
	cmd := Command(t, append(args, "-ready-file", ready)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		s.Scan()
		lines <- s.Text()
		for s.Scan() {
		}
	}()
	select {
	case line = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatal("the server printed nothing")
	}
	b, err := os.ReadFile(ready)
	if err != nil {
		t.Fatalf("ready file: %v (printed %q)", err, line)
	}
	return line, strings.TrimSpace(string(b))
}
