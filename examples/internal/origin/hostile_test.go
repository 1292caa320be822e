package origin

import (
	"io"
	"net"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestServeTrickleSendsTheResponseByteByByte(t *testing.T) {
	l := listen(t)
	go ServeTrickle(l, time.Millisecond)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nhost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(TrickledResponse))
	reads := 0
	for n := 0; n < len(got); reads++ {
		m, err := c.Read(got[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
	if string(got) != TrickledResponse || reads < 10 {
		t.Fatalf("%q in %d reads", got, reads)
	}
}

func TestServeHangNeverAnswers(t *testing.T) {
	l := listen(t)
	go ServeHang(l)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nhost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [1]byte
	if n, err := c.Read(b[:]); n != 0 || err == nil {
		t.Fatalf("answered: %d %v", n, err)
	}
}
