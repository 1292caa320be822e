package main

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// server holds what all connections share: the flags and the counters reported in answers.
type server struct {
	name        string
	goawayAfter int
	refused     atomic.Int64
	goaways     atomic.Int64
	mu          sync.Mutex
	refusedKeys map[string]bool
}

// conn is one client connection. Only the read loop touches streams, seen and lastID;
// writes (from the read loop and from deadline timers) hold wmu.
type conn struct {
	s       *server
	nc      net.Conn
	fr      *http2.Framer
	wmu     sync.Mutex
	enc     *hpack.Encoder
	encBuf  bytes.Buffer
	streams map[uint32]*stream
	seen    int
	lastID  uint32 // last_stream_id of the GOAWAY sent; 0 before one
}

type stream struct {
	id   uint32
	grpc bool
	body bytes.Buffer
}

func (s *server) serve(nc net.Conn) {
	defer nc.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(nc, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	c := &conn{s: s, nc: nc, fr: http2.NewFramer(nc, nc), streams: map[uint32]*stream{}}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.encBuf)
	c.write(func() error { return c.fr.WriteSettings() })
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				c.write(func() error { return c.fr.WritePing(true, data) })
			}
		case *http2.MetaHeadersFrame:
			c.headers(f)
		case *http2.DataFrame:
			c.data(f)
		case *http2.RSTStreamFrame:
			delete(c.streams, f.StreamID)
		case *http2.GoAwayFrame:
			return
		}
	}
}

func (c *conn) write(fn func() error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	fn()
}

// errCode parses an HTTP/2 error code name (http2.ErrCode's String form).
func errCode(name string) http2.ErrCode {
	for code := http2.ErrCode(0); code <= http2.ErrCodeHTTP11Required; code++ {
		if code.String() == name {
			return code
		}
	}
	return http2.ErrCodeInternal
}

// grpcTimeout parses a grpc-timeout value (gRPC over HTTP/2: digits and a unit H M S m u n).
func grpcTimeout(v string) time.Duration {
	if len(v) < 2 {
		return 0
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil {
		return 0
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	return time.Duration(n) * unit
}

func (c *conn) headers(f *http2.MetaHeadersFrame) {
	id := f.StreamID
	if c.lastID != 0 && id > c.lastID {
		return // above our GOAWAY's last_stream_id: ignored, never processed
	}
	if _, trailers := c.streams[id]; trailers {
		if f.StreamEnded() {
			c.answer(c.streams[id])
		}
		return
	}
	c.seen++
	if c.s.goawayAfter > 0 && c.seen == c.s.goawayAfter {
		c.lastID = id
		c.s.goaways.Add(1)
		c.write(func() error { return c.fr.WriteGoAway(id, http2.ErrCodeNo, nil) })
	}
	path := f.PseudoValue("path")
	switch {
	case strings.HasPrefix(path, "/rst/"):
		code := errCode(strings.TrimPrefix(path, "/rst/"))
		c.write(func() error { return c.fr.WriteRSTStream(id, code) })
		return
	case strings.HasPrefix(path, "/rst-after-deadline/"):
		code := errCode(strings.TrimPrefix(path, "/rst-after-deadline/"))
		time.AfterFunc(grpcTimeout(headerValue(f, "grpc-timeout")), func() {
			c.write(func() error { return c.fr.WriteRSTStream(id, code) })
		})
		return
	case strings.HasPrefix(path, "/refuse-once/"):
		c.s.mu.Lock()
		first := !c.s.refusedKeys[path]
		c.s.refusedKeys[path] = true
		c.s.mu.Unlock()
		if first {
			c.s.refused.Add(1)
			c.write(func() error { return c.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) })
			return
		}
	}
	st := &stream{id: id, grpc: strings.HasPrefix(headerValue(f, "content-type"), "application/grpc")}
	c.streams[id] = st
	if f.StreamEnded() {
		c.answer(st)
	}
}

func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, hf := range f.RegularFields() {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// data keeps the body of a live stream and gives the flow-control credit back at once,
// for the connection always (ignored and reset streams' DATA counts against it too).
func (c *conn) data(f *http2.DataFrame) {
	n := uint32(len(f.Data()))
	st := c.streams[f.StreamID]
	if st != nil {
		st.body.Write(f.Data())
	}
	if n > 0 {
		c.write(func() error {
			if st != nil && !f.StreamEnded() {
				c.fr.WriteWindowUpdate(f.StreamID, n)
			}
			return c.fr.WriteWindowUpdate(0, n)
		})
	}
	if st != nil && f.StreamEnded() {
		c.answer(st)
	}
}

// answer sends the whole response. Bodies here are small (tests send well under the
// peer's initial window), so DATA goes out without waiting for flow-control credit.
func (c *conn) answer(st *stream) {
	delete(c.streams, st.id)
	fields := [][2]string{
		{":status", "200"},
		{"x-served-by", c.s.name},
		{"x-stream-id", strconv.FormatUint(uint64(st.id), 10)},
		{"x-refused", strconv.FormatInt(c.s.refused.Load(), 10)},
		{"x-goaways", strconv.FormatInt(c.s.goaways.Load(), 10)},
	}
	body := st.body.Bytes()
	if st.grpc {
		fields = append(fields, [2]string{"content-type", "application/grpc"})
	} else {
		body = []byte("ok from " + c.s.name + "\n")
		fields = append(fields, [2]string{"content-type", "text/plain"}, [2]string{"content-length", strconv.Itoa(len(body))})
	}
	c.write(func() error {
		c.writeHeaders(st.id, false, fields)
		for len(body) > 0 {
			k := min(len(body), 16384)
			end := k == len(body) && !st.grpc
			c.fr.WriteData(st.id, end, body[:k])
			body = body[k:]
		}
		if st.grpc {
			return c.writeHeaders(st.id, true, [][2]string{{"grpc-status", "0"}})
		}
		return nil
	})
}

// writeHeaders encodes and sends one HEADERS frame; the caller holds wmu.
func (c *conn) writeHeaders(id uint32, end bool, fields [][2]string) error {
	c.encBuf.Reset()
	for _, f := range fields {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.encBuf.Bytes(), EndStream: end, EndHeaders: true})
}
