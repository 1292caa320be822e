// Command h2client sends HTTP requests over cleartext HTTP/2 with prior knowledge (or
// HTTP/1.1 with -h1) on ONE connection and prints one JSON line describing what came back.
//
//	h2client -addr HOST:PORT [-method GET] [-path /] [-host AUTHORITY] [-body-size N]
//	         [-unknown-length] [-header 'name: value']... [-count N -concurrency C] [-h1]
//	         [-body-chunk N -body-every DUR] [-grpc] [-show-1xx]
//
// One request (-count 1) prints {"ok":true,"proto":"HTTP/2.0","status":200,"headers":{..},
// "trailers":{..},"body_len":N,"body_sha256":"..","body":"..","elapsed_ms":T} (body only
// when ≤ 64 KiB; T: milliseconds until the response head arrived), and with -show-1xx
// "informational":[{"status":103,"headers":{..}},..], the 1xx responses before it.
// -body-chunk/-body-every pace the upload (a slow client); -grpc frames the body as one
// gRPC message (5-byte prefix) and sends content-type: application/grpc and te: trailers.
// Several print {"ok":true,"requests":N,"statuses":{"200":N},"dials":1,"body_bytes":B}.
// A transport error prints to stderr and exits 1; any HTTP status is a success here.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http2"

	"ringside.dev/examples/internal/origin"
)

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

type opts struct {
	addr, method, path, host string
	bodySize                 int64
	unknownLength, h1        bool
	headers                  headerFlags
	bodyChunk                int64
	bodyEvery                time.Duration
	grpc, show1xx            bool
}

func main() {
	var o opts
	flag.StringVar(&o.addr, "addr", "", "server or proxy address, HOST:PORT")
	flag.StringVar(&o.method, "method", "GET", "request method")
	flag.StringVar(&o.path, "path", "/", "request path (and query)")
	flag.StringVar(&o.host, "host", "", ":authority (HTTP/1.1: Host); default -addr")
	flag.Int64Var(&o.bodySize, "body-size", -1, "send a body of N pattern bytes (-1: no body)")
	flag.BoolVar(&o.unknownLength, "unknown-length", false, "send the body without a content-length (HTTP/1.1: chunked)")
	flag.Var(&o.headers, "header", "extra request header 'name: value' (repeatable)")
	flag.BoolVar(&o.h1, "h1", false, "speak HTTP/1.1 instead of h2c")
	flag.Int64Var(&o.bodyChunk, "body-chunk", 0, "with -body-every: send the body N bytes at a time")
	flag.DurationVar(&o.bodyEvery, "body-every", 0, "with -body-chunk: the interval between chunks")
	flag.BoolVar(&o.grpc, "grpc", false, "send the body as one gRPC message, with gRPC's request headers")
	flag.BoolVar(&o.show1xx, "show-1xx", false, "report the 1xx responses before the final one")
	count := flag.Int("count", 1, "requests to send, all on one connection")
	concurrency := flag.Int("concurrency", 1, "requests in flight at once")
	timeout := flag.Duration("timeout", 60*time.Second, "overall timeout")
	flag.Parse()
	if o.addr == "" || flag.NArg() != 0 || *count < 1 || *concurrency < 1 {
		flag.Usage()
		os.Exit(2)
	}
	var dials atomic.Int64
	client := newClient(o.h1, &dials)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var out map[string]any
	var err error
	if *count == 1 {
		out, err = one(ctx, client, o)
	} else {
		out, err = many(ctx, client, o, *count, *concurrency)
		if out != nil {
			out["dials"] = dials.Load()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "h2client: FAIL: %v\n", err)
		os.Exit(1)
	}
	out["ok"] = true
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}

// newClient speaks h2c with prior knowledge (or HTTP/1.1) and keeps every request on one
// connection: with StrictMaxConcurrentStreams, requests past the server's stream limit wait
// for a free stream instead of opening a second connection.
func newClient(h1 bool, dials *atomic.Int64) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	if h1 {
		return &http.Client{Transport: &http.Transport{
			DialContext: dial, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true,
		}}
	}
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP:                  true,
		StrictMaxConcurrentStreams: true,
		DisableCompression:         true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return dial(ctx, network, addr)
		},
	}}
}

// patternReader yields the origin's deterministic payload; it hides its length so the
// request goes out without a content-length. With chunk and every set it is a slow
// client: chunk bytes at once, then chunk more every interval, whatever the sizes the
// transport reads with.
type patternReader struct {
	off, n, chunk int64
	every         time.Duration
	start         time.Time
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), r.n-r.off)
	if r.chunk > 0 && r.every > 0 {
		if r.start.IsZero() {
			r.start = time.Now()
		}
		ticks := int64(time.Since(r.start) / r.every)
		if r.off >= r.chunk*(ticks+1) {
			time.Sleep(r.start.Add(time.Duration(ticks+1) * r.every).Sub(time.Now()))
			ticks++
		}
		k = min(k, r.chunk*(ticks+1)-r.off)
	}
	for i := int64(0); i < k; i++ {
		p[i] = origin.Pattern(r.off + i)
	}
	r.off += k
	return int(k), nil
}

func request(ctx context.Context, o opts) (*http.Request, error) {
	length := o.bodySize
	newBody := func() io.Reader {
		var body io.Reader = &patternReader{n: o.bodySize, chunk: o.bodyChunk, every: o.bodyEvery}
		if o.grpc {
			var prefix [5]byte
			binary.BigEndian.PutUint32(prefix[1:], uint32(o.bodySize))
			body = io.MultiReader(bytes.NewReader(prefix[:]), body)
		}
		return body
	}
	var body io.Reader
	if o.bodySize >= 0 {
		body = newBody()
		if o.grpc {
			length += 5
		}
	}
	req, err := http.NewRequestWithContext(ctx, o.method, "http://"+o.addr+o.path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		// The transport may replay a request it knows the server did not process
		// (REFUSED_STREAM, a stream above GOAWAY's last_stream_id) if it can rewind the body.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(newBody()), nil }
	}
	switch {
	case o.bodySize < 0:
	case o.unknownLength:
		req.ContentLength = -1
	default:
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	if o.host != "" {
		req.Host = o.host
	}
	if o.grpc {
		req.Header.Set("content-type", "application/grpc")
		req.Header.Set("te", "trailers")
	}
	for _, h := range o.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("-header %q: want 'name: value'", h)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return req, nil
}

func flat(h http.Header) map[string]string {
	m := map[string]string{}
	for k, v := range h {
		m[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return m
}

func one(ctx context.Context, c *http.Client, o opts) (map[string]any, error) {
	req, err := request(ctx, o)
	if err != nil {
		return nil, err
	}
	informational := []map[string]any{}
	if o.show1xx {
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			informational = append(informational, map[string]any{"status": code, "headers": flat(http.Header(h))})
			return nil
		}}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	}
	begin := time.Now()
	r, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(begin).Milliseconds()
	defer r.Body.Close()
	h := sha256.New()
	var head strings.Builder
	n, err := io.Copy(io.MultiWriter(h, &limitWriter{w: &head, left: 64 << 10}), r.Body)
	if err != nil {
		return nil, fmt.Errorf("status %d, body after %d bytes: %w", r.StatusCode, n, err)
	}
	out := map[string]any{
		"proto":       r.Proto,
		"status":      r.StatusCode,
		"headers":     flat(r.Header),
		"trailers":    flat(r.Trailer),
		"body_len":    n,
		"body_sha256": hex.EncodeToString(h.Sum(nil)),
		"elapsed_ms":  elapsed,
	}
	if o.show1xx {
		out["informational"] = informational
	}
	if n <= 64<<10 && utf8.ValidString(head.String()) {
		out["body"] = head.String()
	}
	return out, nil
}

type limitWriter struct {
	w    io.Writer
	left int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if k := min(l.left, len(p)); k > 0 {
		l.w.Write(p[:k])
		l.left -= k
	}
	return len(p), nil
}

func many(ctx context.Context, c *http.Client, o opts, count, concurrency int) (map[string]any, error) {
	var next, bodyBytes atomic.Int64
	var mu sync.Mutex
	statuses := map[string]int{}
	var firstErr error
	var wg sync.WaitGroup
	begin := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				req, err := request(ctx, o)
				var r *http.Response
				if err == nil {
					r, err = c.Do(req)
				}
				if err == nil {
					var n int64
					n, err = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					bodyBytes.Add(n)
				}
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					statuses[strconv.Itoa(r.StatusCode)]++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return map[string]any{
		"requests":   count,
		"statuses":   statuses,
		"body_bytes": bodyBytes.Load(),
		"elapsed_ms": time.Since(begin).Milliseconds(),
	}, nil
}
