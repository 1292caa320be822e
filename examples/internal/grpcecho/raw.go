package grpcecho

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
)

// rawUnary sends one Unary call (an empty BytesValue) over a plain HTTP/2 client with the
// grpc-timeout header set by hand and no deadline of its own, so what it reports is what the
// proxy or server answered, not what grpc-go's client timer would have made of it. md adds
// request headers ("name: value"). It reports the HTTP status, the grpc-status (from the
// trailers, or the headers of a Trailers-Only answer; -1 when there is none), a stream reset
// if one came instead ("reset"), and when the head and the end arrived.
func rawUnary(ctx context.Context, addr string, timeout time.Duration, md []string) (Result, error) {
	// One ClientConn used directly: http2.Transport.RoundTrip would retry a stream refused
	// with REFUSED_STREAM on its own, hiding what the proxy answered.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	tr := &http2.Transport{AllowHTTP: true}
	cc, err := tr.NewClientConn(conn)
	if err != nil {
		return nil, err
	}
	// The gRPC message: not compressed, length 0 (an empty BytesValue).
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+MethodUnary, bytes.NewReader(make([]byte, 5)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	req.Header.Set("grpc-timeout", strconv.FormatInt(timeout.Milliseconds(), 10)+"m")
	for _, kv := range md {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return nil, fmt.Errorf("metadata %q is not 'name: value'", kv)
		}
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res := Result{"timeout_ms": timeout.Milliseconds(), "grpc_status": -1, "reset": ""}
	begin := time.Now()
	resp, err := cc.RoundTrip(req)
	if err != nil {
		// A reset before any response head.
		res["reset"] = err.Error()
		res["elapsed_ms"] = time.Since(begin).Milliseconds()
		return res, nil
	}
	defer resp.Body.Close()
	res["http_status"] = resp.StatusCode
	res["head_ms"] = time.Since(begin).Milliseconds()
	body, rerr := io.ReadAll(resp.Body)
	res["elapsed_ms"] = time.Since(begin).Milliseconds()
	res["body_bytes"] = len(body)
	if rerr != nil {
		res["reset"] = rerr.Error()
	}
	code := resp.Header.Get("grpc-status")
	res["trailers_only"] = code != ""
	if code == "" {
		code = resp.Trailer.Get("grpc-status")
	}
	if code != "" {
		n, err := strconv.Atoi(code)
		if err != nil {
			return nil, fmt.Errorf("grpc-status %q: %w", code, err)
		}
		res["grpc_status"] = n
	}
	res["grpc_message"] = resp.Header.Get("grpc-message") + resp.Trailer.Get("grpc-message")
	return res, nil
}

// raw is the raw mode: rawUnary with x-sleep-ms 5000 (the echo server would answer after
// 5 s) and cfg.Metadata. It reports and does not judge. With cfg.AwaitServerCancel it also
// waits up to 5 s for the server's handler to see its call end (Stats), so a proxy that
// answered the client but left the upstream stream running is caught; without it, it needs
// nothing of the server but HTTP/2 (a scripted peer will do).
func (c client) raw(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Addr == "" {
		return nil, fmt.Errorf("needs the address (-addr)")
	}
	var before int64
	if cfg.AwaitServerCancel {
		var err error
		if before, err = c.stats(ctx); err != nil {
			return nil, err
		}
	}
	res, err := rawUnary(ctx, cfg.Addr, cfg.Timeout, append([]string{"x-sleep-ms: 5000"}, cfg.Metadata...))
	if err != nil {
		return nil, err
	}
	if !cfg.AwaitServerCancel {
		return res, nil
	}
	res["server_cancelled_before"] = before
	after, err := c.awaitCancelled(ctx, before, 5*time.Second)
	if err != nil {
		return nil, err
	}
	res["server_cancelled"] = after
	return res, nil
}

// awaitCancelled polls Stats until the server's cancelled count passes before, at most within.
func (c client) awaitCancelled(ctx context.Context, before int64, within time.Duration) (int64, error) {
	end := time.Now().Add(within)
	for {
		after, err := c.stats(ctx)
		if err != nil {
			return 0, err
		}
		if after > before {
			return after, nil
		}
		if time.Now().After(end) {
			return 0, fmt.Errorf("the server never saw its call end: its count stayed %d for %v", after, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
