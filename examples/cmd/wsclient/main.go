// Command wsclient checks a WebSocket echo endpoint through a proxy.
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
	if err := wsecho.Run(*url, *n, *size, 10*time.Second); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("ok %d messages\n", *n)
}
