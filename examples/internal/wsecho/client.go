// Package wsecho drives a WebSocket echo endpoint and checks every echo.
package wsecho

import (
	"bytes"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// Run sends n messages of size bytes, alternating text and binary, and checks each echo.
func Run(url string, n, size int, timeout time.Duration) error {
	d := websocket.Dialer{HandshakeTimeout: timeout}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		return fmt.Errorf("dial %s: %w", url, err)
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	c.SetReadDeadline(deadline)
	c.SetWriteDeadline(deadline)
	for i := 0; i < n; i++ {
		kind := websocket.TextMessage
		if i%2 == 1 {
			kind = websocket.BinaryMessage
		}
		msg := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		if err := c.WriteMessage(kind, msg); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
		gotKind, got, err := c.ReadMessage()
		if err != nil {
			return fmt.Errorf("read %d: %w", i, err)
		}
		if gotKind != kind || !bytes.Equal(got, msg) {
			return fmt.Errorf("message %d: echo differs (type %d vs %d, %d vs %d bytes)", i, gotKind, kind, len(got), len(msg))
		}
	}
	return c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}
