package main

import (
	"strings"
	"testing"

	"ringside.dev/examples/internal/cmdtest"
	"ringside.dev/examples/internal/origin"
	"ringside.dev/examples/internal/testnet"
)

func TestMain(m *testing.M) { cmdtest.Main(m, main) }

func TestEchoSucceeds(t *testing.T) {
	s := testnet.Serve(t, origin.Handler("o"), origin.Server(nil))
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/ws"
	out, err := cmdtest.Command(t, "-url", url, "-n", "30", "-size", "3000").Output()
	if err != nil || string(out) != "ok 30 messages\n" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestNoServerExitsOne(t *testing.T) {
	l := testnet.Listen(t)
	addr := l.Addr().String()
	l.Close()
	cmd := cmdtest.Command(t, "-url", "ws://"+addr+"/ws", "-n", "1")
	out, err := cmd.Output()
	if err == nil || cmd.ProcessState.ExitCode() != 1 || !strings.HasPrefix(string(out), "error: dial") {
		t.Fatalf("%q %v", out, err)
	}
}
