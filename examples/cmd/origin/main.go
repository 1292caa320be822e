// Command origin is the upstream service behind Ringside in tests, the demo and benchmarks.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"

	"ringside.dev/examples/internal/origin"
	"ringside.dev/examples/internal/readyfile"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address (port 0 picks one)")
	name := flag.String("name", "origin", "instance name, sent back in x-origin")
	ready := flag.String("ready-file", "", "write the bound address here once listening")
	h2c := flag.Bool("h2c", false, "also accept HTTP/2 with prior knowledge (h2c) on the same port")
	maxStreams := flag.Int("h2-max-streams", 0, "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (0: Go's default)")
	tlsCert := flag.String("tls-cert", "", "serve TLS with this certificate (PEM) instead of plaintext")
	tlsKey := flag.String("tls-key", "", "the private key of -tls-cert")
	tlsClientCA := flag.String("tls-client-ca", "", "with -tls-cert: require client certificates signed by this CA")
	failRate := flag.Float64("fail-rate", 0, "share of requests (0..1) answered with -fail-status instead of served, spread evenly")
	failStatus := flag.Int("fail-status", http.StatusServiceUnavailable, "status of the failing share")
	delay := flag.Duration("delay", 0, "added before every answer (a slow server)")
	noAccept := flag.Bool("no-accept", false, "listen but never accept: connects complete in the kernel's backlog, requests get no answer")
	hang := flag.Bool("hang", false, "accept connections and read requests but never answer")
	trickle := flag.Duration("trickle", 0, "answer every request with a fixed response written one byte per this interval")
	flag.Parse()
	if *failRate < 0 || *failRate > 1 {
		log.Fatalf("-fail-rate %v: want 0..1", *failRate)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := readyfile.Write(*ready, l.Addr().String()); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("origin %s listening on %s\n", *name, l.Addr())
	if *noAccept {
		select {} // holds the listener open, never accepting
	}
	if *hang {
		log.Fatal(origin.ServeHang(l))
	}
	if *trickle > 0 {
		log.Fatal(origin.ServeTrickle(l, *trickle))
	}
	faults := &origin.Faults{FailRate: *failRate, FailStatus: *failStatus, Delay: *delay}
	srv := origin.Server(origin.HandlerWithFaults(*name, faults))
	if *h2c {
		origin.AcceptH2C(srv)
	}
	if *maxStreams > 0 {
		srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: *maxStreams}
	}
	if *tlsCert != "" {
		cfg, err := origin.TLSConfig(*tlsCert, *tlsKey, *tlsClientCA)
		if err != nil {
			log.Fatal(err)
		}
		srv.TLSConfig = cfg
		log.Fatal(srv.ServeTLS(l, "", ""))
	}
	log.Fatal(srv.Serve(l))
}
