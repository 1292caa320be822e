package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"

	"ringside.dev/examples/internal/cmdtest"
)

func TestMain(m *testing.M) { cmdtest.Main(m, main) }

func h2c() *http.Client {
	return &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestAnswersPlainAndGRPC(t *testing.T) {
	line, addr := cmdtest.Server(t, "-name", "r")
	if line != "rawh2 r listening on "+addr {
		t.Fatalf("printed %q", line)
	}
	c := h2c()
	r, err := c.Post("http://"+addr+"/x", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || string(b) != "ok from r\n" || r.Header.Get("x-served-by") != "r" {
		t.Fatalf("%d %q %v", r.StatusCode, b, r.Header)
	}
	r, err = c.Post("http://"+addr+"/pkg.S/M", "application/grpc", strings.NewReader("\x00\x00\x00\x00\x01z"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(r.Body)
	if string(b) != "\x00\x00\x00\x00\x01z" || r.Trailer.Get("grpc-status") != "0" {
		t.Fatalf("grpc: %q %v", b, r.Trailer)
	}
}

func TestResetsWithTheCodeAsked(t *testing.T) {
	_, addr := cmdtest.Server(t)
	for _, code := range []http2.ErrCode{http2.ErrCodeCancel, http2.ErrCodeEnhanceYourCalm, http2.ErrCodeInternal} {
		_, err := h2c().Get("http://" + addr + "/rst/" + code.String())
		var se http2.StreamError
		if !errors.As(err, &se) || se.Code != code {
			t.Fatalf("%v: got %v", code, err)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/rst-after-deadline/CANCEL", nil)
	req.Header.Set("grpc-timeout", "50m")
	_, err := h2c().Do(req)
	var se http2.StreamError
	if !errors.As(err, &se) || se.Code != http2.ErrCodeCancel {
		t.Fatalf("after deadline: got %v", err)
	}
}

// Go's own transport retries a REFUSED_STREAM: the answer shows the one refusal.
func TestRefusesTheFirstStreamPerKey(t *testing.T) {
	_, addr := cmdtest.Server(t)
	r, err := h2c().Get("http://" + addr + "/refuse-once/k")
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != 200 || r.Header.Get("x-refused") != "1" {
		t.Fatalf("%d %v", r.StatusCode, r.Header)
	}
}

// Go's own transport retries the streams above last_stream_id on a new connection (its
// retries back off exponentially, hence few requests).
func TestGoawayAfterNStreams(t *testing.T) {
	_, addr := cmdtest.Server(t, "-goaway-after", "3")
	c := h2c()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Get("http://" + addr + "/")
			if err == nil {
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(r.Header.Get("x-goaways")); n < 2 {
		t.Fatalf("x-goaways %q after 7 requests at 3 per connection", r.Header.Get("x-goaways"))
	}
}
