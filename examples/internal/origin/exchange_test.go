package origin

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func seenCount(t *testing.T, base, path string) string {
	t.Helper()
	r, b := get(t, base+"/seen?path="+path)
	if r.StatusCode != 200 || r.Header.Get("x-seen")+"\n" != string(b) {
		t.Fatalf("/seen: %d %q x-seen %q", r.StatusCode, b, r.Header.Get("x-seen"))
	}
	return r.Header.Get("x-seen")
}

func TestSeenCountsRequestsPerPath(t *testing.T) {
	s := start(t)
	if n := seenCount(t, s.URL, "/x/1"); n != "0" {
		t.Fatalf("before: %s", n)
	}
	get(t, s.URL+"/x/1")
	get(t, s.URL+"/x/1?q")
	get(t, s.URL+"/x/2")
	if n := seenCount(t, s.URL, "/x/1"); n != "2" {
		t.Fatalf("after: %s", n)
	}
	if n := seenCount(t, s.URL, "/seen"); n != "0" {
		t.Fatalf("/seen counts itself: %s", n)
	}
}

func TestAbortOnceDropsTheFirstCallThenAnswers(t *testing.T) {
	s := start(t)
	post := func() (*http.Response, error) {
		req, _ := http.NewRequest("POST", s.URL+"/abort-once/orders/42/cancel", http.NoBody)
		return client.Do(req)
	}
	if r, err := post(); err == nil {
		r.Body.Close()
		t.Fatalf("first call answered %d; want the connection dropped", r.StatusCode)
	}
	r, err := post()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || string(b) != "done 2\n" {
		t.Fatalf("second call: %d %q", r.StatusCode, b)
	}
	if n := seenCount(t, s.URL, "/abort-once/orders/42/cancel"); n != "2" {
		t.Fatalf("seen %s", n)
	}
}

// slowBody yields n bytes, chunk at a time, one chunk per tick, whatever size the
// transport reads with.
type slowBody struct {
	left, chunk int
	tick        time.Duration
	inChunk     int // bytes of the current chunk already read
}

func (b *slowBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if b.inChunk == b.chunk {
		time.Sleep(b.tick)
		b.inChunk = 0
	}
	k := min(len(p), b.chunk-b.inChunk, b.left)
	b.left -= k
	b.inChunk += k
	return k, nil
}

func TestLimitAnswers413BeforeTheUploadEnds(t *testing.T) {
	s := start(t)
	req, _ := http.NewRequest("POST", s.URL+"/limit/1000", bytes.NewReader(make([]byte, 999)))
	if r, b := do(t, req); r.StatusCode != 200 || string(b) != "read 999 bytes\n" {
		t.Fatalf("within the cap: %d %q", r.StatusCode, b)
	}
	// 8 MiB at 64 KiB per 40 ms would take over 5 s; the 413 comes after the first MiB.
	const size = 8 << 20
	req, _ = http.NewRequest("POST", s.URL+"/limit/1048576", &slowBody{left: size, chunk: 64 << 10, tick: 40 * time.Millisecond})
	req.ContentLength = size
	begin := time.Now()
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 413 || time.Since(begin) > 3*time.Second {
		t.Fatalf("over the cap: %d after %v", r.StatusCode, time.Since(begin))
	}
}

func TestRejectThenDrainAnswersFirst(t *testing.T) {
	s := start(t)
	const size = 8 << 20
	req, _ := http.NewRequest("POST", s.URL+"/reject-then-drain", &slowBody{left: size, chunk: 64 << 10, tick: 40 * time.Millisecond})
	req.ContentLength = size
	begin := time.Now()
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 413 || time.Since(begin) > 2*time.Second {
		t.Fatalf("%d after %v", r.StatusCode, time.Since(begin))
	}
}

func TestEarlyHintsSends102And103ThenTheAnswer(t *testing.T) {
	s := start(t)
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprintf("%d %s", code, strings.Join(h["Link"], ",")))
		return nil
	}}
	req, _ := http.NewRequest("GET", s.URL+"/early-hints", nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	r, b := do(t, req)
	want := []string{"102 ", "103 </style.css>; rel=preload; as=style"}
	if r.StatusCode != 200 || string(b) != "hinted\n" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%d %q, 1xx %q", r.StatusCode, b, got)
	}
}

// rawRequest writes raw on a fresh connection and returns the response to it.
func rawRequest(t *testing.T, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, raw)
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r
}

func TestRequestTargetIsEchoedAndOptionsStarReachesTheHandler(t *testing.T) {
	s := start(t)
	addr := strings.TrimPrefix(s.URL, "http://")
	r := rawRequest(t, addr, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
	if r.StatusCode != 200 || r.Header.Get("x-origin-uri") != "*" || r.Header.Get("Allow") == "" {
		t.Fatalf("OPTIONS *: %d %v", r.StatusCode, r.Header)
	}
	r = rawRequest(t, addr, "GET /api/../admin?x=%2F HTTP/1.1\r\nHost: a\r\n\r\n")
	if r.Header.Get("x-origin-uri") != "/api/../admin?x=%2F" {
		t.Fatalf("uri: %v", r.Header)
	}
}
