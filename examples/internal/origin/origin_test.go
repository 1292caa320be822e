package origin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"ringside.dev/examples/internal/wsecho"
)

func start(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(Handler("t"))
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	r, err := http.Get(url)
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

func TestBytesAndChunkedPayloads(t *testing.T) {
	s := start(t)
	r, b := get(t, s.URL+"/bytes/100000")
	if r.ContentLength != 100000 || len(b) != 100000 || b[27] != Pattern(27) {
		t.Fatalf("bytes: length %d/%d", r.ContentLength, len(b))
	}
	if r.Header.Get("x-origin") != "t" {
		t.Fatal("missing x-origin")
	}
	r, b = get(t, s.URL+"/chunked/50000")
	if r.ContentLength != -1 || len(b) != 50000 || r.TransferEncoding[0] != "chunked" {
		t.Fatalf("chunked: %v %d", r.TransferEncoding, len(b))
	}
}

func TestStatusAndDelay(t *testing.T) {
	s := start(t)
	if r, _ := get(t, s.URL+"/status/503"); r.StatusCode != 503 {
		t.Fatal(r.StatusCode)
	}
	if r, b := get(t, s.URL+"/status/204"); r.StatusCode != 204 || len(b) != 0 {
		t.Fatal(r.StatusCode, len(b))
	}
	start := time.Now()
	get(t, s.URL+"/delay/50")
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("delay too short")
	}
}

func TestEchoAndSink(t *testing.T) {
	s := start(t)
	body := bytes.Repeat([]byte("0123456789"), 1<<20)
	r, err := http.Post(s.URL+"/echo", "application/x-test", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !bytes.Equal(got, body) || r.Header.Get("Content-Type") != "application/x-test" {
		t.Fatalf("echo: %d bytes", len(got))
	}
	req, _ := http.NewRequest("POST", s.URL+"/sink", io.NopCloser(strings.NewReader("hello")))
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Sum": {"abc"}}
	r, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res SinkResult
	json.NewDecoder(r.Body).Decode(&res)
	r.Body.Close()
	sum := sha256.Sum256([]byte("hello"))
	if res.Bytes != 5 || res.SHA256 != hex.EncodeToString(sum[:]) || !res.Chunked || res.Trailers["x-sum"] != "abc" {
		t.Fatalf("sink: %+v", res)
	}
}

func TestHeadersReportsWhatArrived(t *testing.T) {
	s := start(t)
	req, _ := http.NewRequest("GET", s.URL+"/headers?q=1", nil)
	req.Header.Set("X-Forwarded-For", "1.2.3.4")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res HeadersResult
	json.NewDecoder(r.Body).Decode(&res)
	r.Body.Close()
	if res.RawQuery != "q=1" || res.Headers["x-forwarded-for"][0] != "1.2.3.4" || res.RemoteAddr == "" {
		t.Fatalf("%+v", res)
	}
}

func TestCloseMidIsATruncatedBody(t *testing.T) {
	s := start(t)
	r, err := http.Get(s.URL + "/close-mid")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r.Body)
	if err == nil {
		t.Fatal("a truncated body must fail to read")
	}
}

func TestTrailersAndWebSocket(t *testing.T) {
	s := start(t)
	r, err := http.Get(s.URL + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(r.Body)
	r.Body.Close()
	sum := sha256.Sum256([]byte("hello trailers"))
	if r.Trailer.Get("x-checksum") != hex.EncodeToString(sum[:]) {
		t.Fatalf("trailer %q", r.Trailer.Get("x-checksum"))
	}
	if err := wsecho.Run("ws"+strings.TrimPrefix(s.URL, "http")+"/ws", 20, 5000, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
