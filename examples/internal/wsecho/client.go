// Package wsecho drives a WebSocket echo endpoint and checks every echo.
package wsecho

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// Message returns the i-th test message: size bytes of printable ASCII (valid UTF-8, so it
// may travel as a text frame), different for every i.
func Message(i, size int) []byte {
	msg := make([]byte, size)
	for j := range msg {
		msg[j] = byte('!' + (i+j)%94)
	}
	return msg
}

// Run sends n messages of size bytes, alternating text and binary frames, and checks that
// each echo has the same type and content. timeout bounds the whole exchange, dial included.
func Run(url string, n, size int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	d := websocket.Dialer{HandshakeTimeout: timeout}
	c, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %w", url, err)
	}
	defer c.Close()
	c.SetReadDeadline(deadline)
	c.SetWriteDeadline(deadline)
	for i := 0; i < n; i++ {
		kind := websocket.TextMessage
		if i%2 == 1 {
			kind = websocket.BinaryMessage
		}
		msg := Message(i, size)
		if err := c.WriteMessage(kind, msg); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		gotKind, got, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("read %d: %w", i, err)
		}
		if gotKind != kind || !bytes.Equal(got, msg) {
			return fmt.Errorf("message %d: echo differs (type %d, want %d; %d bytes, want %d)", i, gotKind, kind, len(got), len(msg))
		}
	}
	return c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}
