// Command grpcclient runs one check of ringside.examples.Echo against -addr over plaintext
// HTTP/2 and verifies the answers itself. It prints one JSON line ({"mode":..,"ok":true,..})
// and exits 0, or prints what differed to stderr and exits 1 (2 for bad flags).
//
//	grpcclient -addr HOST:PORT -mode MODE [-size N] [-count N] [-concurrency N] [-timeout DUR] [-authority X] [-n N]
//	           [-md 'name: value'].. [-await-server-cancel]
//
// Modes: unary, error, server-stream, client-stream, bidi, big, deadline, cancel,
// cancel-stream, raw, load. raw does not judge the answer: it reports the grpc-status (or
// reset) that came back for a call with grpc-timeout and no client-side deadline, for the
// caller to check.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"ringside.dev/examples/internal/grpcecho"
)

func main() {
	addr := flag.String("addr", "", "server or proxy address, HOST:PORT")
	var cfg grpcecho.Config
	flag.StringVar(&cfg.Mode, "mode", "unary", "check to run: "+strings.Join(grpcecho.Modes, ", "))
	flag.IntVar(&cfg.Size, "size", 0, "bytes per message (0: 1 KiB; big: 16 MiB)")
	flag.IntVar(&cfg.Count, "count", 0, "messages or calls (0: 100; load: 1000)")
	flag.IntVar(&cfg.Concurrency, "concurrency", 0, "load: calls in flight at once (0: 50)")
	flag.DurationVar(&cfg.Timeout, "timeout", 0, "deadline: the call's deadline (0: 300ms)")
	authority := flag.String("authority", "", "override :authority")
	flag.Func("md", "raw: an extra request header 'name: value' (repeatable)", func(v string) error {
		cfg.Metadata = append(cfg.Metadata, v)
		return nil
	})
	flag.BoolVar(&cfg.AwaitServerCancel, "await-server-cancel", false, "raw: also wait for the server's handler to see its call end")
	repeat := flag.Int("n", 1, "run the check this many times on one connection")
	var tlsFiles grpcecho.TLSFiles
	flag.StringVar(&tlsFiles.CA, "tls-ca", "", "connect over TLS, trusting this CA bundle (PEM)")
	flag.StringVar(&tlsFiles.Cert, "tls-cert", "", "with -tls-ca: client certificate (mutual TLS)")
	flag.StringVar(&tlsFiles.Key, "tls-key", "", "the private key of -tls-cert")
	flag.StringVar(&tlsFiles.ServerName, "tls-server-name", "", "server name to send and verify")
	flag.Parse()
	if *addr == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg.Addr = *addr
	var cc *grpc.ClientConn
	var err error
	if tlsFiles.CA != "" {
		cc, err = grpcecho.DialTLS(*addr, *authority, tlsFiles)
	} else {
		cc, err = grpcecho.Dial(*addr, *authority)
	}
	if err != nil {
		fail(cfg.Mode, err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var res grpcecho.Result
	for i := 0; i < *repeat; i++ {
		if res, err = grpcecho.Run(ctx, cc, cfg); err != nil {
			fail(cfg.Mode, fmt.Errorf("run %d: %w", i+1, err))
		}
	}
	res["runs"] = *repeat
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
}

func fail(mode string, err error) {
	fmt.Fprintf(os.Stderr, "grpcclient %s: FAIL: %v\n", mode, err)
	os.Exit(1)
}
