package origin

import (
	"bufio"
	"io"
	"net"
	"net/textproto"
	"time"
)

// TrickledResponse is what ServeTrickle sends, one byte at a time, for every request.
const TrickledResponse = "HTTP/1.1 200 OK\r\ncontent-length: 8\r\ncontent-type: text/plain\r\n\r\ntrickled"

// ServeHang accepts connections and reads from them but never answers: an upstream that is
// up (connects succeed, requests are received) and hung. Each connection is closed when the
// peer closes it. It returns when l is closed.
func ServeHang(l net.Listener) error {
	return acceptEach(l, func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c)
	})
}

// ServeTrickle answers each request head it reads with TrickledResponse, written one byte
// per every (a slow-drip upstream), on keep-alive connections. A request body is not read
// (tests send none). It returns when l is closed.
func ServeTrickle(l net.Listener, every time.Duration) error {
	return acceptEach(l, func(c net.Conn) {
		r := textproto.NewReader(bufio.NewReader(c))
		for {
			if _, err := r.ReadLine(); err != nil { // the request line
				return
			}
			if _, err := r.ReadMIMEHeader(); err != nil {
				return
			}
			for i := 0; i < len(TrickledResponse); i++ {
				if _, err := c.Write([]byte{TrickledResponse[i]}); err != nil {
					return
				}
				time.Sleep(every)
			}
		}
	})
}

func acceptEach(l net.Listener, serve func(net.Conn)) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			serve(c)
		}()
	}
}
