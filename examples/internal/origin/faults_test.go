package origin

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestFailRateIsExactAndSpread(t *testing.T) {
	f := &Faults{FailRate: 0.5, FailStatus: 503}
	srv := httptest.NewServer(HandlerWithFaults("a", f))
	defer srv.Close()
	failed := 0
	for i := 0; i < 100; i++ {
		resp, err := http.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 503 {
			failed++
			if resp.Header.Get("x-origin") != "a" || resp.Header.Get("x-origin-fault") != "fail" {
				t.Fatalf("failure not tagged: %v", resp.Header)
			}
		}
	}
	if failed != 50 {
		t.Fatalf("%d of 100 failed, want 50", failed)
	}
	resp, err := http.Get(srv.URL + "/seen?path=/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("x-seen"); got != "100" {
		t.Fatalf("failed requests are counted too: x-seen %s", got)
	}
}

func TestDelayAndNoFaults(t *testing.T) {
	srv := httptest.NewServer(HandlerWithFaults("a", &Faults{Delay: 50 * time.Millisecond}))
	defer srv.Close()
	start := time.Now()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(start); took < 50*time.Millisecond || resp.StatusCode != 200 {
		t.Fatalf("status %d after %v", resp.StatusCode, took)
	}
}
