// Command baselineproxy is the Go reverse proxy (or TCP proxy with -tcp) benchmarks compare
// Ringside against.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"

	"ringside.dev/examples/internal/baseline"
	"ringside.dev/examples/internal/readyfile"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:4180", "listen address (port 0 picks one)")
	upstream := flag.String("upstream", "http://127.0.0.1:8080", "upstream URL (host:port with -tcp)")
	tcp := flag.Bool("tcp", false, "opaque TCP proxy (io.Copy both ways) instead of HTTP")
	ready := flag.String("ready-file", "", "write the bound address here once listening")
	flag.Parse()
	var u *url.URL
	if !*tcp {
		var err error
		if u, err = url.Parse(*upstream); err != nil || u.Scheme == "" || u.Host == "" {
			log.Fatalf("-upstream %q: want a URL such as http://127.0.0.1:8080", *upstream)
		}
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if err := readyfile.Write(*ready, l.Addr().String()); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("baselineproxy listening on %s\n", l.Addr())
	if *tcp {
		log.Fatal(baseline.ServeTCP(l, baseline.TCPAddr(*upstream)))
	}
	log.Fatal(baseline.Server(baseline.HTTP(u)).Serve(l))
}
