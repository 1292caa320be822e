package origin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"ringside.dev/examples/internal/testnet"
	"ringside.dev/examples/internal/wsecho"
)

// start runs the origin handler on the tuned server, as cmd/origin does.
func start(t *testing.T) *httptest.Server {
	t.Helper()
	return testnet.Serve(t, Handler("t"), Server(nil))
}

// client never reuses a connection, so one test's hijacked connection cannot leak into the next.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = Pattern(int64(i))
	}
	return b
}

func TestServerIsTunedForStreaming(t *testing.T) {
	s := Server(nil)
	if s.ReadTimeout != 0 || s.WriteTimeout != 0 || s.IdleTimeout != 120*time.Second || s.MaxHeaderBytes != 1<<20 {
		t.Fatalf("%+v", s)
	}
}

func TestRootHealthzAndOriginHeader(t *testing.T) {
	s := start(t)
	for _, path := range []string{"/", "/anything/else?x=1"} {
		r, b := get(t, s.URL+path)
		if r.StatusCode != 200 || string(b) != "hello from t\n" || r.Header.Get("x-origin") != "t" {
			t.Fatalf("%s: %d %q %q", path, r.StatusCode, b, r.Header.Get("x-origin"))
		}
	}
	r, b := get(t, s.URL+"/healthz")
	if r.StatusCode != 200 || string(b) != "ok" || r.Header.Get("x-origin") != "t" {
		t.Fatalf("healthz: %d %q", r.StatusCode, b)
	}
}

func TestBytesHasLengthAndDeterministicContent(t *testing.T) {
	s := start(t)
	for _, n := range []int{0, 1, 26, 16 * 1024, 1<<20 + 7} {
		r, b := get(t, fmt.Sprintf("%s/bytes/%d", s.URL, n))
		if r.StatusCode != 200 || r.ContentLength != int64(n) || len(r.TransferEncoding) != 0 {
			t.Fatalf("bytes/%d: status %d, length %d, te %v", n, r.StatusCode, r.ContentLength, r.TransferEncoding)
		}
		if !bytes.Equal(b, pattern(n)) {
			t.Fatalf("bytes/%d: content differs", n)
		}
	}
	if r, _ := get(t, s.URL+"/bytes/minus"); r.StatusCode != 400 {
		t.Fatalf("bad size: %d", r.StatusCode)
	}
}

func TestBytesStreamsHugeBodiesWithoutBuffering(t *testing.T) {
	s := start(t)
	// 4 GiB promised; read 1 MiB and hang up. The handler must not try to allocate the lot.
	r, err := client.Get(s.URL + "/bytes/4294967296")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.ContentLength != 4<<30 {
		t.Fatalf("length %d", r.ContentLength)
	}
	b := make([]byte, 1<<20)
	if _, err := io.ReadFull(r.Body, b); err != nil || !bytes.Equal(b, pattern(1<<20)) {
		t.Fatalf("prefix: %v", err)
	}
}

func TestChunkedHasNoLength(t *testing.T) {
	s := start(t)
	r, b := get(t, s.URL+"/chunked/100000")
	if r.ContentLength != -1 || len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" {
		t.Fatalf("chunked: length %d, te %v", r.ContentLength, r.TransferEncoding)
	}
	if !bytes.Equal(b, pattern(100000)) {
		t.Fatal("chunked content differs")
	}
}

func TestStatus(t *testing.T) {
	s := start(t)
	for _, code := range []int{200, 201, 404, 500, 503} {
		r, b := get(t, fmt.Sprintf("%s/status/%d", s.URL, code))
		if r.StatusCode != code || string(b) != fmt.Sprintf("status %d\n", code) {
			t.Fatalf("%d: %d %q", code, r.StatusCode, b)
		}
	}
	for _, code := range []int{204, 304} {
		r, b := get(t, fmt.Sprintf("%s/status/%d", s.URL, code))
		if r.StatusCode != code || len(b) != 0 {
			t.Fatalf("%d: %d with %d body bytes", code, r.StatusCode, len(b))
		}
	}
	for _, bad := range []string{"abc", "99", "100", "600"} {
		if r, _ := get(t, s.URL+"/status/"+bad); r.StatusCode != 400 {
			t.Fatalf("/status/%s: %d", bad, r.StatusCode)
		}
	}
}

func TestDelayWaitsAndHonoursCancellation(t *testing.T) {
	s := start(t)
	begin := time.Now()
	if r, _ := get(t, s.URL+"/delay/50"); r.StatusCode != 200 || time.Since(begin) < 50*time.Millisecond {
		t.Fatalf("delay: %d after %v", r.StatusCode, time.Since(begin))
	}
	// The handler itself must return once the client goes away, not sleep the full 10s.
	done := make(chan struct{})
	h := Handler("t")
	req := httptest.NewRequest("GET", "/delay/10000", nil)
	ctx, cancel := context.WithCancel(req.Context())
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))
		close(done)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("delay handler ignored cancellation")
	}
	// ...and counts the cancelled wait under /cancelled.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/seen?path=/cancelled/delay/10000", nil))
	if got := rec.Header().Get("x-seen"); got != "1" {
		t.Fatalf("cancelled waits seen: %q, want 1", got)
	}
}

func TestEchoTenMiBWithLength(t *testing.T) {
	s := start(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	req, _ := http.NewRequest("PUT", s.URL+"/echo", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-test")
	r, got := do(t, req)
	if r.ContentLength != int64(len(body)) || r.Header.Get("Content-Type") != "application/x-test" {
		t.Fatalf("echo: length %d, type %q", r.ContentLength, r.Header.Get("Content-Type"))
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("echo: %d bytes differ from the %d sent", len(got), len(body))
	}
}

func TestEchoStreamsChunkedBodiesFullDuplex(t *testing.T) {
	s := start(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	piece := func(i int) []byte { return []byte(fmt.Sprintf("piece %d;", i)) }
	// The origin answers (headers included) as the first piece arrives, so send it before
	// waiting for the response.
	go pw.Write(piece(0))
	req, _ := http.NewRequest("POST", s.URL+"/echo", pr)
	r, err := client.Do(req) // returns once headers arrive, while the body is still open
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.ContentLength != -1 {
		t.Fatalf("length %d, want chunked", r.ContentLength)
	}
	// Each piece must come back before the next is sent: the echo streams, it does not buffer.
	for i := 0; i < 5; i++ {
		piece := piece(i)
		if i > 0 {
			if _, err := pw.Write(piece); err != nil {
				t.Fatal(err)
			}
		}
		got := make([]byte, len(piece))
		if _, err := io.ReadFull(r.Body, got); err != nil || !bytes.Equal(got, piece) {
			t.Fatalf("piece %d: %q %v", i, got, err)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(r.Body); err != nil || len(rest) != 0 {
		t.Fatalf("tail %q %v", rest, err)
	}
}

func sinkOf(t *testing.T, req *http.Request) SinkResult {
	t.Helper()
	r, b := do(t, req)
	var res SinkResult
	if err := json.Unmarshal(b, &res); err != nil || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("sink answer %q: %v", b, err)
	}
	return res
}

func TestSinkCountsHashesAndReportsTrailers(t *testing.T) {
	s := start(t)
	body := pattern(3<<20 + 5)
	sum := sha256.Sum256(body)
	req, _ := http.NewRequest("PUT", s.URL+"/sink", bytes.NewReader(body))
	res := sinkOf(t, req)
	if res.Bytes != int64(len(body)) || res.SHA256 != hex.EncodeToString(sum[:]) || res.Method != "PUT" || res.Chunked || len(res.Trailers) != 0 {
		t.Fatalf("fixed length: %+v", res)
	}

	// Chunked with a trailer whose value is only known once the body is sent.
	req, _ = http.NewRequest("POST", s.URL+"/sink", nil)
	req.Trailer = http.Header{"X-Sum": nil}
	req.ContentLength = -1
	req.Body = &trailerSetter{Reader: strings.NewReader("hello"), req: req}
	res = sinkOf(t, req)
	hello := sha256.Sum256([]byte("hello"))
	if res.Bytes != 5 || res.SHA256 != hex.EncodeToString(hello[:]) || res.Method != "POST" || !res.Chunked || res.Trailers["x-sum"] != "abc" {
		t.Fatalf("chunked: %+v", res)
	}
}

func TestSinkCountsCompleteAndTruncatedBodies(t *testing.T) {
	s := start(t)
	req, _ := http.NewRequest("POST", s.URL+"/sink", strings.NewReader("whole"))
	sinkOf(t, req)
	// A body that stops short of its content-length, then a close.
	c, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "POST /sink HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nshort")
	c.(*net.TCPConn).CloseWrite()
	io.ReadAll(c)
	c.Close()
	if n := seenCount(t, s.URL, "/completed/sink"); n != "1" {
		t.Fatalf("completed: %s", n)
	}
	if n := seenCount(t, s.URL, "/truncated/sink"); n != "1" {
		t.Fatalf("truncated: %s", n)
	}
}

// trailerSetter fills in the trailer value once the body is drained, as a streaming client would.
type trailerSetter struct {
	io.Reader
	req *http.Request
}

func (s *trailerSetter) Read(p []byte) (int, error) {
	n, err := s.Reader.Read(p)
	if err == io.EOF {
		s.req.Trailer.Set("X-Sum", "abc")
	}
	return n, err
}

func (s *trailerSetter) Close() error { return nil }

func TestHeadersReportsWhatArrived(t *testing.T) {
	s := start(t)
	req, _ := http.NewRequest("DELETE", s.URL+"/headers?q=1&r=two", nil)
	req.Host = "example.test:8080"
	req.Header.Set("X-Forwarded-For", "1.2.3.4")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	_, b := do(t, req)
	var res HeadersResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Method != "DELETE" || res.Path != "/headers" || res.RawQuery != "q=1&r=two" || res.Host != "example.test:8080" ||
		res.Proto != "HTTP/1.1" || !strings.HasPrefix(res.RemoteAddr, "127.0.0.1:") {
		t.Fatalf("%+v", res)
	}
	if fmt.Sprint(res.Headers["x-forwarded-for"]) != "[1.2.3.4]" || fmt.Sprint(res.Headers["x-multi"]) != "[a b]" {
		t.Fatalf("headers %v", res.Headers)
	}
	for name := range res.Headers {
		if name != strings.ToLower(name) {
			t.Fatalf("header %q not lowercased", name)
		}
	}
	if !strings.Contains(string(b), `"raw_query"`) || !strings.Contains(string(b), `"remote_addr"`) {
		t.Fatalf("JSON field names: %s", b)
	}
}

func TestCloseMidIsAnUnexpectedEOF(t *testing.T) {
	s := start(t)
	r, err := client.Get(s.URL + "/close-mid")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.ContentLength != 100000 || r.Header.Get("x-origin") != "t" {
		t.Fatalf("length %d, x-origin %q", r.ContentLength, r.Header.Get("x-origin"))
	}
	b, err := io.ReadAll(r.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(b) != 1000 || !bytes.Equal(b, pattern(1000)) {
		t.Fatalf("got %d bytes, err %v; want 1000 then unexpected EOF", len(b), err)
	}
}

func TestResetIsAConnectionReset(t *testing.T) {
	s := start(t)
	_, err := client.Get(s.URL + "/reset")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("want connection reset, got %v", err)
	}
}

func TestTrailers(t *testing.T) {
	s := start(t)
	r, b := get(t, s.URL+"/trailers")
	sum := sha256.Sum256([]byte("hello trailers"))
	if string(b) != "hello trailers" || r.ContentLength != -1 || r.Trailer.Get("x-checksum") != hex.EncodeToString(sum[:]) {
		t.Fatalf("body %q, length %d, trailer %q", b, r.ContentLength, r.Trailer.Get("x-checksum"))
	}
}

func TestWebSocketEcho(t *testing.T) {
	s := start(t)
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/ws"
	if err := wsecho.Run(url, 50, 5000, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Larger than gorilla's default buffers: fragmented frames must be reassembled and echoed.
	if err := wsecho.Run(url, 4, 256<<10, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptH2CServesBothProtocolsOnOnePortAndSaysWhich(t *testing.T) {
	s := testnet.Serve(t, Handler("t"), AcceptH2C(Server(nil)))
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	for _, c := range []struct {
		client *http.Client
		proto  string
	}{
		{client, "HTTP/1.1"},
		{&http.Client{Transport: &http.Transport{Protocols: &h2}}, "HTTP/2.0"},
	} {
		r, err := c.client.Get(s.URL + "/headers")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		var res HeadersResult
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		if r.Proto != c.proto || r.Header.Get("x-origin-proto") != c.proto || res.Proto != c.proto {
			t.Fatalf("want %s: response %s, x-origin-proto %q, origin saw %s", c.proto, r.Proto, r.Header.Get("x-origin-proto"), res.Proto)
		}
	}
}
