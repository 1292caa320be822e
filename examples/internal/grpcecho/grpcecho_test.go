package grpcecho

import (
	"context"
	"strings"
	"testing"
	"time"

	"ringside.dev/examples/internal/testnet"
)

func serve(t *testing.T) (*Server, string) {
	t.Helper()
	l := testnet.Listen(t)
	s := New("t")
	g := NewGRPCServer(s)
	go g.Serve(l)
	t.Cleanup(g.Stop)
	return s, l.Addr().String()
}

func TestEveryModePassesAgainstTheServerDirectly(t *testing.T) {
	s, addr := serve(t)
	cc, err := Dial(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	for _, mode := range Modes {
		cfg := Config{Mode: mode, Addr: addr, AwaitServerCancel: true}
		if mode == "load" {
			cfg.Count = 200
		}
		res, err := Run(ctx, cc, cfg)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if res["mode"] != mode || res["ok"] != true {
			t.Fatalf("%s: %v", mode, res)
		}
		if mode == "unary" && res["served_by"] != "t" {
			t.Fatalf("served_by %v", res["served_by"])
		}
		if mode == "raw" && res["grpc_status"] != 4 && res["reset"] == "" {
			t.Fatalf("raw: neither DEADLINE_EXCEEDED nor a reset: %v", res)
		}
	}
	// deadline, cancel, cancel-stream and raw each ended one handler early.
	if n := s.Cancelled(); n != 4 {
		t.Fatalf("cancelled = %d, want 4", n)
	}
}

func TestMismatchesAreReported(t *testing.T) {
	_, addr := serve(t)
	cc, _ := Dial(addr, "")
	defer cc.Close()
	if _, err := Run(context.Background(), cc, Config{Mode: "nope"}); err == nil || !strings.Contains(err.Error(), "unknown mode") {
		t.Fatalf("unknown mode: %v", err)
	}
	// A deadline the server beats is a mismatch the check must report, not a pass.
	res, err := Run(context.Background(), cc, Config{Mode: "deadline", Timeout: 6 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "want DeadlineExceeded") {
		t.Fatalf("deadline longer than the sleep: %v %v", res, err)
	}
}
