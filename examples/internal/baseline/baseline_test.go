package baseline

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestHTTPProxiesToTheUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up "+r.URL.Path) }))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p := httptest.NewServer(HTTP(u))
	defer p.Close()
	r, err := http.Get(p.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	if string(b) != "up /x" {
		t.Fatalf("%q", b)
	}
}

func TestTCPHalfClose(t *testing.T) {
	up, _ := net.Listen("tcp", "127.0.0.1:0")
	defer up.Close()
	go func() {
		c, err := up.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		c.Write([]byte("got " + string(b)))
		c.Close()
	}()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go ServeTCP(l, up.Addr().String())
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	if string(b) != "got ping" {
		t.Fatalf("%q", b)
	}
}
