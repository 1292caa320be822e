package origin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// maxSeenPaths bounds the request log: a long benchmark with distinct paths must not grow the
// origin without limit. Paths past the bound are not counted (/seen answers 0 for them).
const maxSeenPaths = 100_000

// requestLog counts the requests the origin received, per URL path, so a test can ask
// whether (and how often) a request reached the origin: GET /seen?path=P answers the count.
// Lock-free for paths already seen (sync.Map), so benchmarks through the origin do not
// serialise on it.
type requestLog struct {
	counts sync.Map // path → *atomic.Int64
	paths  atomic.Int64
}

// add counts one request for path and returns how many there have been, this one included.
func (l *requestLog) add(path string) int64 {
	if c, ok := l.counts.Load(path); ok {
		return c.(*atomic.Int64).Add(1)
	}
	if l.paths.Load() >= maxSeenPaths {
		return 0
	}
	c, loaded := l.counts.LoadOrStore(path, new(atomic.Int64))
	if !loaded {
		l.paths.Add(1)
	}
	return c.(*atomic.Int64).Add(1)
}

func (l *requestLog) get(path string) int64 {
	if c, ok := l.counts.Load(path); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// seen answers how many requests for ?path=P the origin received, in the body and in
// x-seen. /seen itself is not counted.
func (l *requestLog) seen(w http.ResponseWriter, r *http.Request) {
	n := l.get(r.URL.Query().Get("path"))
	w.Header().Set("x-seen", strconv.FormatInt(n, 10))
	fmt.Fprintf(w, "%d\n", n)
}

// abortOnce models a handler that crashes after its side effect, once: the first request
// for each path is read in full, counted, and the connection is dropped without an answer
// (HTTP/1: closed; HTTP/2: the stream is reset), exactly what Go does when a handler panics.
// Later requests for the path answer 200 "done N" (N: the calls so far), so a proxy that
// replays the request makes the client see a success and the side effect run twice.
func abortOnce(log *requestLog) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n := log.get(r.URL.Path)
		if n == 1 {
			panic(http.ErrAbortHandler)
		}
		fmt.Fprintf(w, "done %d\n", n)
	}
}

// limit caps the request body at /limit/N bytes with http.MaxBytesReader, as a real service
// does: past N it answers 413 at once, without reading the rest (Go then closes an HTTP/1
// connection, or resets an HTTP/2 stream with NO_ERROR after the response). Within the cap
// it answers 200 "read K bytes".
func limit(w http.ResponseWriter, r *http.Request) {
	n, err := tail(r, "/limit/")
	if err != nil || n < 0 {
		http.Error(w, "bad limit", http.StatusBadRequest)
		return
	}
	read, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, n))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, fmt.Sprintf("request body over %d bytes", n), http.StatusRequestEntityTooLarge)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		fmt.Fprintf(w, "read %d bytes\n", read)
	}
}

// rejectThenDrain answers 413 at once, before reading anything, and then keeps reading
// (and discarding) the whole body: an upstream whose early response is complete long before
// the upload is, on a connection it keeps healthy.
func rejectThenDrain(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).EnableFullDuplex()
	const body = "rejected before the body\n"
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	io.WriteString(w, body)
	http.NewResponseController(w).Flush()
	io.Copy(io.Discard, r.Body)
}

// earlyHints sends 102 Processing, then 103 Early Hints with a Link header (RFC 8297), then
// the final 200 "hinted".
func earlyHints(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusProcessing)
	w.Header().Add("Link", "</style.css>; rel=preload; as=style")
	w.WriteHeader(http.StatusEarlyHints)
	io.WriteString(w, "hinted\n")
}

// optionsStar answers the server-wide OPTIONS * (RFC 9110 §9.3.7), which the mux would
// refuse, so that x-origin-uri shows that "*" arrived.
func optionsStar(w http.ResponseWriter, r *http.Request) bool {
	if r.RequestURI != "*" {
		return false
	}
	w.Header().Set("Allow", strings.Join([]string{"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"}, ", "))
	io.WriteString(w, "options *\n")
	return true
}
