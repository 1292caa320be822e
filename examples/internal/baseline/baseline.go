// Package baseline is the Go reverse proxy Ringside is compared against: the "epoll/Go" of
// the io_uring-vs-epoll debate, built the way a Go team would build it.
package baseline

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// HTTP returns an httputil.ReverseProxy with a Transport tuned for one busy upstream.
func HTTP(upstream *url.URL) http.Handler {
	p := httputil.NewSingleHostReverseProxy(upstream)
	p.Transport = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	p.ErrorLog = log.New(io.Discard, "", 0)
	return p
}

// ServeTCP proxies every accepted connection to upstream with io.Copy both ways,
// propagating half-close.
func ServeTCP(l net.Listener, upstream string) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func(down net.Conn) {
			defer down.Close()
			up, err := net.DialTimeout("tcp", upstream, time.Second)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(up, down)
			go pipe(down, up)
			<-done
			<-done
		}(c)
	}
}
