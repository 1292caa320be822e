// Package testnet starts loopback servers for tests, patiently: on a machine where a
// benchmark is churning through ephemeral ports, binding port 0 can fail for a moment with
// EADDRINUSE, and a test should wait that out rather than fail (or panic, as httptest does).
package testnet

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Listen binds 127.0.0.1:0, retrying for up to 10 seconds; the listener is closed at cleanup.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			t.Cleanup(func() { l.Close() })
			return l
		}
		if time.Now().After(end) {
			t.Fatalf("listen on 127.0.0.1:0: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Serve runs srv (nil: a plain server for h) on a fresh loopback port until cleanup.
func Serve(t testing.TB, h http.Handler, srv *http.Server) *httptest.Server {
	t.Helper()
	if srv == nil {
		srv = &http.Server{}
	}
	srv.Handler = h
	s := &httptest.Server{Listener: Listen(t), Config: srv}
	s.Start()
	t.Cleanup(s.Close)
	return s
}
