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
	"strings"
	"sync"
	"time"
)

// HTTP returns an httputil.ReverseProxy with a Transport tuned for one busy upstream.
// The client's Host header is kept; X-Forwarded-For is appended by ReverseProxy.
func HTTP(upstream *url.URL) http.Handler {
	p := httputil.NewSingleHostReverseProxy(upstream)
	p.Transport = &http.Transport{
		Proxy:               nil, // never an environment proxy: benchmarks measure this hop only
		DialContext:         (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	p.BufferPool = &bufferPool{}
	p.ErrorLog = log.New(io.Discard, "", 0)
	return p
}

// Server wraps h in a server tuned like the origin's: no body timeouts, long idle timeout.
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 1 << 20}
}

// bufferPool reuses ReverseProxy's 32 KiB copy buffers across requests.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32*1024)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// TCPAddr accepts host:port, or a URL such as http://host:port, and returns host:port.
func TCPAddr(upstream string) string {
	if strings.Contains(upstream, "://") {
		if u, err := url.Parse(upstream); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return upstream
}

// ServeTCP proxies every accepted connection to upstream with io.Copy both ways,
// propagating half-close. It returns when l is closed.
func ServeTCP(l net.Listener, upstream string) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go proxyConn(c, upstream)
	}
}

func proxyConn(down net.Conn, upstream string) {
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
}
