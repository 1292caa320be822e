// Command rawh2 is an h2c (prior knowledge) server written on golang.org/x/net/http2's
// Framer, for the HTTP/2 behaviours net/http's server does not show on demand: GOAWAY in
// the middle of a burst, RST_STREAM with a chosen code, REFUSED_STREAM.
//
//	rawh2 -addr HOST:PORT [-name NAME] [-ready-file F] [-goaway-after N]
//
// What a request gets depends on its :path:
//
//	/rst/CODE                 RST_STREAM(CODE) as soon as its HEADERS arrive; CODE is an
//	                          HTTP/2 error code name (CANCEL, ENHANCE_YOUR_CALM, INTERNAL_ERROR..)
//	/rst-after-deadline/CODE  the same, once the request's grpc-timeout has passed since its
//	                          HEADERS arrived (a gRPC server whose own deadline fires first)
//	/refuse-once/KEY          the first stream for KEY gets RST_STREAM(REFUSED_STREAM): never
//	                          processed (RFC 9113 §8.7); later ones are answered
//	anything else             answered once its request is complete
//
// An answer is 200 with x-served-by: NAME, x-stream-id, x-refused (streams refused so far)
// and x-goaways (GOAWAYs sent so far). A request with content-type application/grpc gets
// its body back as the DATA and trailers grpc-status: 0; any other gets "ok from NAME\n".
//
// With -goaway-after N, the Nth request on each connection is followed at once by
// GOAWAY(NO_ERROR, last_stream_id = its stream); streams above it on that connection are
// ignored (no answer, no reset), as RFC 9113 §6.8 allows, and the connection stays open
// until the client closes it. Streams up to it are answered.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"

	"ringside.dev/examples/internal/readyfile"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks one)")
	name := flag.String("name", "rawh2", "instance name, sent back in x-served-by")
	ready := flag.String("ready-file", "", "write the bound address here once listening")
	goawayAfter := flag.Int("goaway-after", 0, "send GOAWAY after this many requests on each connection (0: never)")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := readyfile.Write(*ready, l.Addr().String()); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rawh2 %s listening on %s\n", *name, l.Addr())
	s := &server{name: *name, goawayAfter: *goawayAfter, refusedKeys: map[string]bool{}}
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go s.serve(c)
	}
}
