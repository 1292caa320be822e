package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"ringside.dev/examples/internal/cmdtest"
	"ringside.dev/examples/internal/origin"
	"ringside.dev/examples/internal/testnet"
)

func TestMain(m *testing.M) { cmdtest.Main(m, main) }

func h2cOrigin(t *testing.T) string {
	s := testnet.Serve(t, origin.Handler("t"), origin.AcceptH2C(origin.Server(nil)))
	return strings.TrimPrefix(s.URL, "http://")
}

func run(t *testing.T, args ...string) map[string]any {
	t.Helper()
	cmd := cmdtest.Command(t, args...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("h2client %v: %v %s", args, err, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	return m
}

func TestShows1xxResponses(t *testing.T) {
	addr := h2cOrigin(t)
	m := run(t, "-addr", addr, "-path", "/early-hints", "-show-1xx")
	info, _ := json.Marshal(m["informational"])
	if m["status"] != float64(200) || !strings.Contains(string(info), `"status":102`) || !strings.Contains(string(info), `rel=preload`) {
		t.Fatalf("%v", m)
	}
}

// A paced 8 MiB upload takes over 5 s; the origin's 413 comes after its 1 MiB cap.
func TestPacedUploadSeesTheEarly413(t *testing.T) {
	addr := h2cOrigin(t)
	for _, proto := range [][]string{nil, {"-h1"}} {
		args := append([]string{"-addr", addr, "-method", "POST", "-path", "/limit/1048576", "-body-size", "8388608", "-body-chunk", "65536", "-body-every", "40ms"}, proto...)
		m := run(t, args...)
		if m["status"] != float64(http.StatusRequestEntityTooLarge) || m["elapsed_ms"].(float64) > 3000 {
			t.Fatalf("%v: %v", proto, m)
		}
	}
}

func TestGRPCFramesTheBody(t *testing.T) {
	addr := h2cOrigin(t)
	m := run(t, "-addr", addr, "-method", "POST", "-path", "/sink", "-grpc", "-body-size", "3")
	if !strings.Contains(m["body"].(string), `"bytes":8,`) {
		t.Fatalf("%v", m)
	}
}
