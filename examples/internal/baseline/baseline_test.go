package baseline

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"ringside.dev/examples/internal/origin"
	"ringside.dev/examples/internal/testnet"
	"ringside.dev/examples/internal/wsecho"
)

// proxied starts the origin and the baseline proxy in front of it.
func proxied(t *testing.T) (proxy, upstream *httptest.Server) {
	t.Helper()
	up := testnet.Serve(t, origin.Handler("up"), origin.Server(nil))
	u, _ := url.Parse(up.URL)
	return testnet.Serve(t, HTTP(u), Server(nil)), up
}

func TestHTTPKeepsHostAndAddsForwardedFor(t *testing.T) {
	p, _ := proxied(t)
	req, _ := http.NewRequest("GET", p.URL+"/headers?q=1", nil)
	req.Host = "app.test"
	req.Header.Set("Connection", "keep-alive, x-secret")
	req.Header.Set("X-Secret", "hop-by-hop")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var got origin.HeadersResult
	if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if r.Header.Get("x-origin") != "up" || got.Host != "app.test" || got.RawQuery != "q=1" || got.Path != "/headers" {
		t.Fatalf("%+v", got)
	}
	if xff := got.Headers["x-forwarded-for"]; len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Fatalf("x-forwarded-for %v", xff)
	}
	if _, ok := got.Headers["x-secret"]; ok {
		t.Fatal("a header named in Connection must not be forwarded")
	}
}

func TestHTTPStreamsBodiesBothWays(t *testing.T) {
	p, _ := proxied(t)
	body := bytes.Repeat([]byte("ringside"), 4<<20/8)
	r, err := http.Post(p.URL+"/echo", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("echo: %d bytes, %v", len(got), err)
	}
	r, err = http.Get(p.URL + "/chunked/200000")
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil || len(got) != 200000 || r.ContentLength != -1 {
		t.Fatalf("chunked: %d bytes, length %d, %v", len(got), r.ContentLength, err)
	}
}

func TestHTTPWebSocketUpgrade(t *testing.T) {
	p, _ := proxied(t)
	if err := wsecho.Run("ws"+strings.TrimPrefix(p.URL, "http")+"/ws", 20, 3000, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPUpstreamDownIs502(t *testing.T) {
	dead := testnet.Listen(t)
	u, _ := url.Parse("http://" + dead.Addr().String())
	dead.Close()
	p := testnet.Serve(t, HTTP(u), Server(nil))
	r, err := http.Get(p.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d", r.StatusCode)
	}
}

func TestTCPAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5432":        "127.0.0.1:5432",
		"http://127.0.0.1:8080": "127.0.0.1:8080",
		"tcp://db:5432":         "db:5432",
	} {
		if got := TCPAddr(in); got != want {
			t.Errorf("TCPAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTCPHalfClose(t *testing.T) {
	up := testnet.Listen(t)
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			// Reads to EOF (the client's half-close), then answers on the still-open direction.
			b, _ := io.ReadAll(c)
			c.Write([]byte("got " + string(b)))
			c.Close()
		}
	}()
	l := testnet.Listen(t)
	go ServeTCP(l, up.Addr().String())
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("ping"))
		c.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(b) != "got ping" {
			t.Fatalf("%q %v", b, err)
		}
	}
}
