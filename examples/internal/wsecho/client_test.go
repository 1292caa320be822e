package wsecho

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"ringside.dev/examples/internal/testnet"
)

// server upgrades and hands each message to reply; nil reply means never answer.
func server(t *testing.T, reply func(kind int, msg []byte) (int, []byte)) string {
	t.Helper()
	up := websocket.Upgrader{}
	s := testnet.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			kind, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if reply == nil {
				continue
			}
			if err := c.WriteMessage(reply(kind, msg)); err != nil {
				return
			}
		}
	}), nil)
	return "ws" + strings.TrimPrefix(s.URL, "http")
}

func TestMessagesAreTextSafeAndDistinct(t *testing.T) {
	a, b := Message(0, 100), Message(1, 100)
	if len(a) != 100 || !utf8.Valid(a) || bytes.Equal(a, b) {
		t.Fatalf("%q %q", a, b)
	}
}

func TestRunAcceptsAFaithfulEcho(t *testing.T) {
	url := server(t, func(k int, m []byte) (int, []byte) { return k, m })
	if err := Run(url, 10, 1000, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestRunRejectsAlteredEchoes(t *testing.T) {
	altered := server(t, func(k int, m []byte) (int, []byte) { return k, bytes.ToUpper(m) })
	if err := Run(altered, 10, 100, 5*time.Second); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("content change not caught: %v", err)
	}
	retyped := server(t, func(_ int, m []byte) (int, []byte) { return websocket.BinaryMessage, m })
	if err := Run(retyped, 10, 100, 5*time.Second); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("frame type change not caught: %v", err)
	}
}

func TestRunTimesOut(t *testing.T) {
	silent := server(t, nil)
	begin := time.Now()
	if err := Run(silent, 1, 10, 300*time.Millisecond); err == nil {
		t.Fatal("no echo must be an error")
	}
	if time.Since(begin) > 3*time.Second {
		t.Fatalf("timeout not enforced: %v", time.Since(begin))
	}
}

func TestRunReportsDialErrors(t *testing.T) {
	l := testnet.Listen(t)
	addr := l.Addr().String()
	l.Close()
	if err := Run("ws://"+addr+"/ws", 1, 10, time.Second); err == nil || !strings.Contains(err.Error(), "dial") {
		t.Fatalf("%v", err)
	}
}
