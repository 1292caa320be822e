// Command grpcserver serves ringside.examples.Echo (see internal/grpcecho) over plaintext
// HTTP/2 (h2c prior knowledge), the gRPC upstream behind Ringside in tests.
//
// With -ignore-deadline it serves through net/http's HTTP/2 server instead, after deleting
// each request's grpc-timeout: the server then never ends a call at a deadline (no
// RST_STREAM CANCEL, no DEADLINE_EXCEEDED of its own), so a deadline the client sees can only
// have come from the proxy in between.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"ringside.dev/examples/internal/grpcecho"
	"ringside.dev/examples/internal/readyfile"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks one)")
	name := flag.String("name", "grpc", "instance name, sent back as header metadata x-served-by")
	ready := flag.String("ready-file", "", "write the bound address here once listening")
	ignoreDeadline := flag.Bool("ignore-deadline", false, "drop grpc-timeout before the service sees it")
	unavailableRate := flag.Float64("unavailable-rate", 0, "share of Unary calls (0..1) answered UNAVAILABLE at once (Trailers-Only), spread evenly")
	var tlsFiles grpcecho.TLSFiles
	flag.StringVar(&tlsFiles.Cert, "tls-cert", "", "serve over TLS with this certificate (PEM)")
	flag.StringVar(&tlsFiles.Key, "tls-key", "", "the private key of -tls-cert")
	flag.StringVar(&tlsFiles.CA, "tls-client-ca", "", "with -tls-cert: require client certificates from this CA")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := readyfile.Write(*ready, l.Addr().String()); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("grpcserver %s listening on %s\n", *name, l.Addr())
	var opts []grpc.ServerOption
	if tlsFiles.Cert != "" {
		creds, err := grpcecho.ServerTLS(tlsFiles)
		if err != nil {
			log.Fatal(err)
		}
		opts = append(opts, creds)
	}
	svc := grpcecho.New(*name)
	svc.UnavailableRate = *unavailableRate
	g := grpcecho.NewGRPCServer(svc, opts...)
	if !*ignoreDeadline {
		log.Fatal(g.Serve(l))
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	s := &http.Server{
		Protocols: &p,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("grpc-timeout")
			g.ServeHTTP(w, r)
		}),
	}
	log.Fatal(s.Serve(l))
}
