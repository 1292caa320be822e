// Package origin is the upstream HTTP service the tests, the demo and the benchmarks put
// behind Ringside: small, deterministic endpoints that exercise a proxy's edge cases.
package origin

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler serves every endpoint, tagging each response with x-origin: name,
// x-origin-proto: the protocol the request arrived with (HTTP/1.1, HTTP/2.0) and
// x-origin-uri: the request target exactly as it arrived (r.RequestURI, e.g. "*" or an
// unnormalised path). It counts every request per path for /seen.
func Handler(name string) http.Handler {
	return HandlerWithFaults(name, nil)
}

// HandlerWithFaults is Handler with faults injected (nil: none); see Faults.
func HandlerWithFaults(name string, faults *Faults) http.Handler {
	var reqs requestLog
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/bytes/", func(w http.ResponseWriter, r *http.Request) { payload(w, r, "/bytes/", true) })
	mux.HandleFunc("/chunked/", func(w http.ResponseWriter, r *http.Request) { payload(w, r, "/chunked/", false) })
	mux.HandleFunc("/status/", status)
	mux.HandleFunc("/delay/", func(w http.ResponseWriter, r *http.Request) { delay(w, r, &reqs) })
	mux.HandleFunc("/echo", echo)
	mux.HandleFunc("/sink", func(w http.ResponseWriter, r *http.Request) { sink(w, r, &reqs) })
	mux.HandleFunc("/headers", headers)
	mux.HandleFunc("/close-mid", closeMid)
	mux.HandleFunc("/reset", reset)
	mux.HandleFunc("/trailers", trailers)
	mux.HandleFunc("/ws", wsEcho)
	mux.HandleFunc("/seen", reqs.seen)
	mux.HandleFunc("/abort-once/", abortOnce(&reqs))
	mux.HandleFunc("/limit/", limit)
	mux.HandleFunc("/reject-then-drain", rejectThenDrain)
	mux.HandleFunc("/early-hints", earlyHints)
	mux.HandleFunc("/stray-length/", strayLength)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", name) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-origin", name)
		w.Header().Set("x-origin-proto", r.Proto)
		w.Header().Set("x-origin-uri", r.RequestURI)
		if r.URL.Path != "/seen" {
			reqs.add(r.URL.Path)
		}
		if faults.apply(w, r) {
			return
		}
		if optionsStar(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Server returns a server tuned for proxy tests: no body timeouts (bodies stream for as long
// as they need), a long idle timeout, large header limit, and OPTIONS * handed to the
// handler (instead of net/http's built-in answer) so the origin can show it arrived.
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 1 << 20, DisableGeneralOptionsHandler: true}
}

// AcceptH2C makes s also serve HTTP/2 over cleartext with prior knowledge, next to
// HTTP/1.1 on the same port (what a cluster with protocol: http2 speaks to).
func AcceptH2C(s *http.Server) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.Protocols = &p
	return s
}

// Pattern is the deterministic payload byte at offset i.
func Pattern(i int64) byte { return byte('a' + i%26) }

func tail(r *http.Request, prefix string) (int64, error) {
	return strconv.ParseInt(strings.TrimPrefix(r.URL.Path, prefix), 10, 64)
}

func payload(w http.ResponseWriter, r *http.Request, prefix string, withLength bool) {
	n, err := tail(r, prefix)
	if err != nil || n < 0 {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	if withLength {
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	}
	buf := make([]byte, 16*1024)
	flusher, _ := w.(http.Flusher)
	for off := int64(0); off < n; {
		k := min(int64(len(buf)), n-off)
		for i := int64(0); i < k; i++ {
			buf[i] = Pattern(off + i)
		}
		if _, err := w.Write(buf[:k]); err != nil {
			return
		}
		off += k
		if !withLength && flusher != nil {
			flusher.Flush()
		}
	}
}

func status(w http.ResponseWriter, r *http.Request) {
	code, err := tail(r, "/status/")
	// 1xx are informational, not final answers: a handler cannot end on one.
	if err != nil || code < 200 || code > 599 {
		http.Error(w, "bad status", http.StatusBadRequest)
		return
	}
	w.WriteHeader(int(code))
	if code != http.StatusNoContent && code != http.StatusNotModified {
		fmt.Fprintf(w, "status %d\n", code)
	}
}

// delay answers after N ms (/delay/N), or stops when the request's context ends first (the
// client, or the proxy in front, went away): it then counts the path under /cancelled, so
// GET /seen?path=/cancelled/delay/N says whether (and how often) a wait was cancelled.
func delay(w http.ResponseWriter, r *http.Request, log *requestLog) {
	ms, err := tail(r, "/delay/")
	if err != nil || ms < 0 {
		http.Error(w, "bad delay", http.StatusBadRequest)
		return
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		fmt.Fprintf(w, "waited %dms\n", ms)
	case <-r.Context().Done():
		log.add("/cancelled" + r.URL.Path)
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if r.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	// Full duplex: HTTP/1 servers otherwise stop reading the body once they start replying.
	_ = http.NewResponseController(w).EnableFullDuplex()
	buf := make([]byte, 32*1024)
	flusher, _ := w.(http.Flusher)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil && r.ContentLength < 0 {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// SinkResult is what /sink answers.
type SinkResult struct {
	Bytes    int64             `json:"bytes"`
	SHA256   string            `json:"sha256"`
	Method   string            `json:"method"`
	Chunked  bool              `json:"chunked"`
	Trailers map[string]string `json:"trailers"`
}

// sink reads the whole request body and answers what it got. A body that arrived whole (as
// its framing says) is counted under /completed/sink, one that did not under /truncated/sink:
// GET /seen?path=/completed/sink says whether a proxy ever delivered a cut body as complete.
func sink(w http.ResponseWriter, r *http.Request, log *requestLog) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		log.add("/truncated" + r.URL.Path)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	log.add("/completed" + r.URL.Path)
	res := SinkResult{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil)), Method: r.Method, Trailers: map[string]string{}}
	for _, te := range r.TransferEncoding {
		res.Chunked = res.Chunked || strings.EqualFold(te, "chunked")
	}
	for k, v := range r.Trailer {
		res.Trailers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

// HeadersResult is what /headers answers: the request as the origin saw it.
type HeadersResult struct {
	Method     string              `json:"method"`
	Path       string              `json:"path"`
	RawQuery   string              `json:"raw_query"`
	Host       string              `json:"host"`
	Proto      string              `json:"proto"`
	Headers    map[string][]string `json:"headers"`
	RemoteAddr string              `json:"remote_addr"`
	// The request body as received (its length and SHA-256, hex) and its trailers, so a
	// test can compare what two protocols delivered (tests/parity_corpus.rs).
	BodyLen    int64               `json:"body_len"`
	BodySHA256 string              `json:"body_sha256"`
	Trailers   map[string][]string `json:"trailers"`
}

func headers(w http.ResponseWriter, r *http.Request) {
	res := HeadersResult{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Proto: r.Proto, Headers: map[string][]string{}, RemoteAddr: r.RemoteAddr, Trailers: map[string][]string{}}
	for k, v := range r.Header {
		res.Headers[strings.ToLower(k)] = v
	}
	h := sha256.New()
	res.BodyLen, _ = io.Copy(h, r.Body)
	res.BodySHA256 = hex.EncodeToString(h.Sum(nil))
	for k, v := range r.Trailer {
		res.Trailers[strings.ToLower(k)] = v
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

func hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "cannot hijack", http.StatusInternalServerError)
		return nil, nil, false
	}
	c, rw, err := hj.Hijack()
	return c, rw, err == nil
}

// strayLength answers /stray-length/CODE with that bodiless status (204 or 304) and a
// Content-Length: 7 nothing follows: forbidden on 204 (RFC 9110 §8.6), the selected
// representation's length on 304. Over HTTP/1.1 the head is written raw (net/http would
// normalise it) and the connection closed; over HTTP/2 the field is set as is.
func strayLength(w http.ResponseWriter, r *http.Request) {
	code, err := tail(r, "/stray-length/")
	if err != nil || (code != http.StatusNoContent && code != http.StatusNotModified) {
		http.Error(w, "bad status", http.StatusBadRequest)
		return
	}
	if r.ProtoMajor == 2 {
		w.Header().Set("Content-Length", "7")
		w.WriteHeader(int(code))
		return
	}
	name := w.Header().Get("x-origin")
	c, rw, ok := hijack(w)
	if !ok {
		return
	}
	defer c.Close()
	fmt.Fprintf(rw, "HTTP/1.1 %d %s\r\nx-origin: %s\r\nContent-Length: 7\r\nConnection: close\r\n\r\n", code, http.StatusText(int(code)), name)
	rw.Flush()
}

// closeMid promises 100000 bytes, sends 1000, and hangs up: an upstream dying mid-response.
func closeMid(w http.ResponseWriter, _ *http.Request) {
	name := w.Header().Get("x-origin")
	c, rw, ok := hijack(w)
	if !ok {
		return
	}
	defer c.Close()
	fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nx-origin: %s\r\nContent-Length: 100000\r\n\r\n", name)
	for i := int64(0); i < 1000; i++ {
		rw.WriteByte(Pattern(i))
	}
	rw.Flush()
}

// reset closes the connection with an RST before answering.
func reset(w http.ResponseWriter, _ *http.Request) {
	c, _, ok := hijack(w)
	if !ok {
		return
	}
	if tc, isTCP := c.(*net.TCPConn); isTCP {
		tc.SetLinger(0)
	}
	c.Close()
}

func trailers(w http.ResponseWriter, _ *http.Request) {
	body := "hello trailers"
	sum := sha256.Sum256([]byte(body))
	w.Header().Set("Trailer", "x-checksum")
	io.WriteString(w, body)
	w.(http.Flusher).Flush()
	w.Header().Set("x-checksum", hex.EncodeToString(sum[:]))
}
