// Command wsclient checks a WebSocket echo endpoint (through a proxy): it sends n messages,
// alternating text and binary frames, and checks that each comes back unchanged. It prints
// "ok N messages" and exits 0, or prints the error and exits 1. 10 seconds at most.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"ringside.dev/examples/internal/wsecho"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:4143/ws", "echo endpoint")
	n := flag.Int("n", 100, "messages")
	size := flag.Int("size", 1000, "bytes per message")
	flag.Parse()
	if *n < 0 || *size < 0 {
		fmt.Println("error: -n and -size must not be negative")
		os.Exit(1)
	}
	if err := wsecho.Run(*url, *n, *size, 10*time.Second); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("ok %d messages\n", *n)
}
