package main

import (
	"io"
	"net/http"
	"testing"

	"ringside.dev/examples/internal/cmdtest"
)

func TestMain(m *testing.M) { cmdtest.Main(m, main) }

func TestOriginOnPortZeroAnnouncesItsAddress(t *testing.T) {
	line, addr := cmdtest.Server(t, "-addr", "127.0.0.1:0", "-name", "cmd")
	if line != "origin cmd listening on "+addr {
		t.Fatalf("printed %q, ready file says %q", line, addr)
	}
	r, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(b) != "hello from cmd\n" || r.Header.Get("x-origin") != "cmd" {
		t.Fatalf("%q %q", b, r.Header.Get("x-origin"))
	}
}
