// Command grpcserver serves ringside.examples.Echo (see internal/grpcecho) over plaintext
// HTTP/2 (h2c prior knowledge), the gRPC upstream behind Ringside in tests.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"

	"ringside.dev/examples/internal/grpcecho"
	"ringside.dev/examples/internal/readyfile"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0 picks one)")
	name := flag.String("name", "grpc", "instance name, sent back as header metadata x-served-by")
	ready := flag.String("ready-file", "", "write the bound address here once listening")
	flag.Parse()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := readyfile.Write(*ready, l.Addr().String()); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("grpcserver %s listening on %s\n", *name, l.Addr())
	log.Fatal(grpcecho.NewGRPCServer(grpcecho.New(*name)).Serve(l))
}
