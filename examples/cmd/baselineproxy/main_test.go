package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"ringside.dev/examples/internal/cmdtest"
	"ringside.dev/examples/internal/origin"
	"ringside.dev/examples/internal/testnet"
)

func TestMain(m *testing.M) { cmdtest.Main(m, main) }

func TestHTTPMode(t *testing.T) {
	up := testnet.Serve(t, origin.Handler("up"), origin.Server(nil))
	line, addr := cmdtest.Server(t, "-listen", "127.0.0.1:0", "-upstream", up.URL)
	if line != "baselineproxy listening on "+addr {
		t.Fatalf("printed %q, ready file says %q", line, addr)
	}
	r, err := http.Get("http://" + addr + "/bytes/100000")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if len(b) != 100000 || r.Header.Get("x-origin") != "up" {
		t.Fatalf("%d bytes, x-origin %q", len(b), r.Header.Get("x-origin"))
	}
}

func TestTCPMode(t *testing.T) {
	up := testnet.Serve(t, origin.Handler("up"), origin.Server(nil))
	upAddr := strings.TrimPrefix(up.URL, "http://")
	_, addr := cmdtest.Server(t, "-listen", "127.0.0.1:0", "-upstream", upAddr, "-tcp")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(b), "hello from up\n") {
		t.Fatalf("%q %v", b, err)
	}
}

func TestBadUpstreamFailsFast(t *testing.T) {
	out, err := cmdtest.Command(t, "-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:8080").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "want a URL") {
		t.Fatalf("%q %v", out, err)
	}
}
