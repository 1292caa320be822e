package origin

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// Faults makes the origin misbehave on purpose, so tests and benchmarks inject failures
// with a real server instead of mocks.
type Faults struct {
	// FailRate is the share of requests (0..1) answered with FailStatus instead of being
	// served. The choice is deterministic: of any n consecutive requests, n×FailRate fail
	// (rounded), spread evenly.
	FailRate   float64
	FailStatus int
	// Delay is added before every answer (a slow server).
	Delay time.Duration
	count atomic.Int64
}

// fail reports whether the next request fails: request i fails when ⌊(i+1)·r⌋ > ⌊i·r⌋.
func (f *Faults) fail() bool {
	if f.FailRate <= 0 {
		return false
	}
	i := float64(f.count.Add(1) - 1)
	return int64((i+1)*f.FailRate) > int64(i*f.FailRate)
}

// apply runs before the handler (after the request was counted for /seen): it delays, and
// answers FailStatus for the failing share. It reports whether it answered. /seen and
// /healthz are never delayed or failed: they are how a test observes the origin.
func (f *Faults) apply(w http.ResponseWriter, r *http.Request) bool {
	if f == nil || r.URL.Path == "/seen" || r.URL.Path == "/healthz" {
		return false
	}
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	if !f.fail() {
		return false
	}
	w.Header().Set("x-origin-fault", "fail")
	w.WriteHeader(f.FailStatus)
	fmt.Fprintf(w, "injected failure %d\n", f.FailStatus)
	return true
}
