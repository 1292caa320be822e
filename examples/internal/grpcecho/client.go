package grpcecho

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Modes lists every check Run knows, in the order the client's usage prints them.
var Modes = []string{"unary", "error", "server-stream", "client-stream", "bidi", "big", "deadline", "cancel", "cancel-stream", "raw", "load"}

// Config says which check to run and how big. Zero values take the mode's defaults.
type Config struct {
	Mode        string
	Size        int           // bytes per message (default 1 KiB; big: 16 MiB)
	Count       int           // messages or calls (default 100; load: 1000)
	Concurrency int           // load: calls in flight at once (default 50)
	Timeout     time.Duration // deadline, raw: the call's deadline (default 300ms)
	// raw: the address to send to (it uses its own HTTP/2 client, not the conn),
	// extra request headers ("name: value"), and whether to wait for the server to see the
	// call end.
	Addr              string
	Metadata          []string
	AwaitServerCancel bool
}

// Result is the one JSON line the client prints: mode, ok and what the mode measured.
type Result map[string]any

// Dial opens a plaintext (h2c prior knowledge) client connection to addr with 32 MiB
// message limits; authority, if set, overrides :authority.
func Dial(addr, authority string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMsgSize), grpc.MaxCallSendMsgSize(MaxMsgSize)),
	}
	if authority != "" {
		opts = append(opts, grpc.WithAuthority(authority))
	}
	return grpc.NewClient("passthrough:///"+addr, opts...)
}

// Run performs one check over cc and verifies the answers itself: an error says what differed.
func Run(ctx context.Context, cc *grpc.ClientConn, cfg Config) (Result, error) {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	switch cfg.Mode {
	case "big":
		def(&cfg.Size, 16<<20)
	case "load":
		def(&cfg.Count, 1000)
	}
	def(&cfg.Size, 1024)
	def(&cfg.Count, 100)
	def(&cfg.Concurrency, 50)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 300 * time.Millisecond
	}
	c := client{cc}
	var res Result
	var err error
	switch cfg.Mode {
	case "unary":
		res, err = c.unary(ctx, cfg.Size)
	case "error":
		res, err = c.error(ctx)
	case "server-stream":
		res, err = c.serverStream(ctx, cfg.Count, cfg.Size)
	case "client-stream":
		res, err = c.clientStream(ctx, cfg.Count, cfg.Size)
	case "bidi":
		res, err = c.bidi(ctx, cfg.Count, cfg.Size)
	case "big":
		res, err = c.big(ctx, cfg.Size)
	case "deadline":
		res, err = c.deadline(ctx, cfg.Timeout)
	case "cancel":
		res, err = c.cancel(ctx)
	case "cancel-stream":
		res, err = c.cancelStream(ctx)
	case "raw":
		res, err = c.raw(ctx, cfg)
	case "load":
		res, err = c.load(ctx, cfg.Count, cfg.Concurrency, cfg.Size)
	default:
		return nil, fmt.Errorf("unknown mode %q (want one of %v)", cfg.Mode, Modes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Mode, err)
	}
	res["mode"] = cfg.Mode
	res["ok"] = true
	return res, nil
}

type client struct{ cc *grpc.ClientConn }

// payload is n deterministic bytes, different for each seed.
func payload(seed, n int) []byte {
	b := make([]byte, n)
	for k := range b {
		b[k] = Pattern(seed, k)
	}
	return b
}

func (c client) call(ctx context.Context, in []byte, opts ...grpc.CallOption) ([]byte, error) {
	out := new(wrapperspb.BytesValue)
	err := c.cc.Invoke(ctx, MethodUnary, wrapperspb.Bytes(in), out, opts...)
	return out.GetValue(), err
}

// binValue is a binary metadata value with every awkward byte: NUL, CR/LF, high bytes.
var binValue = string([]byte{0, 1, 2, '\r', '\n', 0x7f, 0x80, 0xfe, 0xff})

func (c client) unary(ctx context.Context, size int) (Result, error) {
	in := payload(7, size)
	ctx = metadata.AppendToOutgoingContext(ctx, "x-echo-a", "1", "x-echo-b-bin", binValue)
	var hdr, trl metadata.MD
	out, err := c.call(ctx, in, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(out, in) {
		return nil, fmt.Errorf("echo differs: sent %d bytes, got %d", len(in), len(out))
	}
	for where, md := range map[string]metadata.MD{"header": hdr, "trailer": trl} {
		if got := md.Get("x-echo-a"); len(got) != 1 || got[0] != "1" {
			return nil, fmt.Errorf("%s x-echo-a = %q, want [\"1\"]", where, got)
		}
		if got := md.Get("x-echo-b-bin"); len(got) != 1 || got[0] != binValue {
			return nil, fmt.Errorf("%s x-echo-b-bin = %q, want [%q]", where, got, binValue)
		}
	}
	servedBy := ""
	if v := hdr.Get("x-served-by"); len(v) == 1 {
		servedBy = v[0]
	} else {
		return nil, fmt.Errorf("header x-served-by = %q", v)
	}
	return Result{"size": size, "served_by": servedBy}, nil
}

func (c client) error(ctx context.Context) (Result, error) {
	// Once with header metadata before the status, once as a Trailers-Only response.
	for _, trailersOnly := range []bool{false, true} {
		kv := []string{"x-fail-code", "5"}
		if trailersOnly {
			kv = append(kv, "x-trailers-only", "1")
		}
		_, err := c.call(metadata.AppendToOutgoingContext(ctx, kv...), []byte("x"))
		st := status.Convert(err)
		if st.Code() != codes.NotFound || st.Message() != "failing as asked" {
			return nil, fmt.Errorf("trailers-only=%v: got %v %q, want NotFound \"failing as asked\"", trailersOnly, st.Code(), st.Message())
		}
		d := st.Details()
		if len(d) != 1 {
			return nil, fmt.Errorf("trailers-only=%v: %d status details, want 1: %v", trailersOnly, len(d), d)
		}
		if sv, ok := d[0].(*wrapperspb.StringValue); !ok || sv.GetValue() != "detail" {
			return nil, fmt.Errorf("trailers-only=%v: detail %#v, want StringValue \"detail\"", trailersOnly, d[0])
		}
	}
	return Result{"code": int(codes.NotFound), "message": "failing as asked", "detail": "detail"}, nil
}

func (c client) stream(ctx context.Context, i int, method string) (grpc.ClientStream, error) {
	return c.cc.NewStream(ctx, &ServiceDesc.Streams[i], method)
}

func (c client) serverStream(ctx context.Context, count, size int) (Result, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "x-count", strconv.Itoa(count), "x-size", strconv.Itoa(size))
	s, err := c.stream(ctx, 0, MethodServerStream)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(wrapperspb.Bytes(nil)); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	for j := 0; ; j++ {
		m := new(wrapperspb.BytesValue)
		err := s.RecvMsg(m)
		if err == io.EOF {
			if j != count {
				return nil, fmt.Errorf("got %d messages, want %d", j, count)
			}
			return Result{"count": count, "size": size}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", j, err)
		}
		if j >= count || !bytes.Equal(m.GetValue(), payload(j, size)) {
			return nil, fmt.Errorf("message %d (%d bytes) differs", j, len(m.GetValue()))
		}
	}
}

func (c client) clientStream(ctx context.Context, count, size int) (Result, error) {
	s, err := c.stream(ctx, 1, MethodClientStream)
	if err != nil {
		return nil, err
	}
	for j := 0; j < count; j++ {
		if err := s.SendMsg(wrapperspb.Bytes(payload(j, size))); err != nil {
			return nil, fmt.Errorf("send %d: %w", j, err)
		}
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	reply := new(wrapperspb.BytesValue)
	if err := s.RecvMsg(reply); err != nil {
		return nil, err
	}
	want := fmt.Sprintf("bytes=%d msgs=%d", count*size, count)
	if string(reply.GetValue()) != want {
		return nil, fmt.Errorf("reply %q, want %q", reply.GetValue(), want)
	}
	if err := s.RecvMsg(new(wrapperspb.BytesValue)); err != io.EOF {
		return nil, fmt.Errorf("after the reply: %v, want EOF", err)
	}
	return Result{"count": count, "size": size, "reply": want}, nil
}

func (c client) bidi(ctx context.Context, count, size int) (Result, error) {
	s, err := c.stream(ctx, 2, MethodBidi)
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	// Strict ping-pong: each message is sent only after the previous echo came back, so a
	// proxy that buffers either direction until end of stream deadlocks here.
	for j := 0; j < count; j++ {
		in := payload(j, size)
		if err := s.SendMsg(wrapperspb.Bytes(in)); err != nil {
			return nil, fmt.Errorf("send %d: %w", j, err)
		}
		out := new(wrapperspb.BytesValue)
		if err := s.RecvMsg(out); err != nil {
			return nil, fmt.Errorf("echo %d: %w", j, err)
		}
		if !bytes.Equal(out.GetValue(), in) {
			return nil, fmt.Errorf("echo %d differs", j)
		}
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	if err := s.RecvMsg(new(wrapperspb.BytesValue)); err != io.EOF {
		return nil, fmt.Errorf("after close: %v, want EOF", err)
	}
	return Result{"count": count, "size": size, "elapsed_ms": time.Since(begin).Milliseconds()}, nil
}

func (c client) big(ctx context.Context, size int) (Result, error) {
	in := payload(3, size)
	begin := time.Now()
	out, err := c.call(ctx, in)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(out, in) {
		return nil, fmt.Errorf("echo of %d bytes differs (got %d bytes)", len(in), len(out))
	}
	return Result{"size": size, "elapsed_ms": time.Since(begin).Milliseconds()}, nil
}

func (c client) deadline(ctx context.Context, timeout time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "x-sleep-ms", "5000"), timeout)
	defer cancel()
	begin := time.Now()
	_, err := c.call(ctx, []byte("x"))
	elapsed := time.Since(begin)
	if code := status.Code(err); code != codes.DeadlineExceeded {
		return nil, fmt.Errorf("got %v (%v), want DeadlineExceeded", code, err)
	}
	if elapsed > timeout+time.Second {
		return nil, fmt.Errorf("DeadlineExceeded only after %v (deadline %v)", elapsed, timeout)
	}
	return Result{"timeout_ms": timeout.Milliseconds(), "elapsed_ms": elapsed.Milliseconds()}, nil
}

func (c client) stats(ctx context.Context) (int64, error) {
	out := new(wrapperspb.StringValue)
	if err := c.cc.Invoke(ctx, MethodStats, new(emptypb.Empty), out); err != nil {
		return 0, fmt.Errorf("Stats: %w", err)
	}
	var n int64
	if _, err := fmt.Sscanf(out.GetValue(), "cancelled=%d", &n); err != nil {
		return 0, fmt.Errorf("Stats answered %q: %w", out.GetValue(), err)
	}
	return n, nil
}

func (c client) cancel(ctx context.Context) (Result, error) {
	before, err := c.stats(ctx)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "x-sleep-ms", "5000"))
	timer := time.AfterFunc(200*time.Millisecond, cancel)
	defer timer.Stop()
	begin := time.Now()
	_, err = c.call(callCtx, []byte("x"))
	elapsed := time.Since(begin)
	if code := status.Code(err); code != codes.Canceled {
		return nil, fmt.Errorf("got %v (%v), want Canceled", code, err)
	}
	// The RST_STREAM has to travel through the proxy to the server: 5 s on a loaded machine.
	after, err := c.awaitCancelled(ctx, before, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return Result{"elapsed_ms": elapsed.Milliseconds(), "server_cancelled": after, "server_cancelled_before": before}, nil
}

// cancelStream cancels a server-streaming call after its first 3 messages, while the server
// is still sending (one message every 10 ms, 100000 of them): the client must see Canceled
// and the server's handler its context end.
func (c client) cancelStream(ctx context.Context) (Result, error) {
	before, err := c.stats(ctx)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "x-count", "100000", "x-size", "16", "x-interval-ms", "10"))
	defer cancel()
	s, err := c.stream(callCtx, 0, MethodServerStream)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(wrapperspb.Bytes(nil)); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	for j := 0; j < 3; j++ {
		m := new(wrapperspb.BytesValue)
		if err := s.RecvMsg(m); err != nil {
			return nil, fmt.Errorf("message %d: %w", j, err)
		}
		if !bytes.Equal(m.GetValue(), payload(j, 16)) {
			return nil, fmt.Errorf("message %d differs", j)
		}
	}
	cancel()
	for {
		err := s.RecvMsg(new(wrapperspb.BytesValue))
		if err == nil {
			continue // messages already in flight before the cancel
		}
		if code := status.Code(err); code != codes.Canceled {
			return nil, fmt.Errorf("after cancelling: got %v (%v), want Canceled", code, err)
		}
		break
	}
	after, err := c.awaitCancelled(ctx, before, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return Result{"server_cancelled": after, "server_cancelled_before": before}, nil
}

func (c client) load(ctx context.Context, count, concurrency, size int) (Result, error) {
	in := payload(11, size)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	begin := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				out, err := c.call(ctx, in)
				if err == nil && !bytes.Equal(out, in) {
					err = errors.New("echo differs")
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	elapsed := time.Since(begin)
	return Result{
		"calls":         count,
		"concurrency":   concurrency,
		"size":          size,
		"elapsed_ms":    elapsed.Milliseconds(),
		"calls_per_sec": int64(float64(count) / elapsed.Seconds()),
	}, nil
}
