// Package grpcecho is the gRPC service the tests put behind Ringside: ringside.examples.Echo,
// written by hand (no protoc) with well-known protobuf types as its messages, and the client
// checks that drive it (see client.go).
//
// Request metadata steers the unary method:
//
//	x-fail-code: N   answer with status code N, message "failing as asked" and a StringValue
//	                 detail "detail" (so grpc-status-details-bin must survive the proxy)
//	x-sleep-ms: N    sleep N ms first, honouring the deadline and cancellation; a handler that
//	                 sees its context end counts it, and Stats reports the count
//	x-sleep-blind    sleep without watching the context: only the transport ends the call
//	                 (grpc-go resets the stream with CANCEL at the deadline)
//	x-send-header    send the response header at once, before sleeping (so the call's end,
//	                 whatever it is, comes after the response head)
//	x-echo-*         sent back as response header metadata and as trailer metadata
//	x-trailers-only  set no header metadata (not even x-served-by), so an error answer is a
//	                 Trailers-Only response
//
// With UnavailableRate (grpcserver -unavailable-rate) a share of Unary calls is answered
// UNAVAILABLE before anything else (Trailers-Only); Stats reports
// "cancelled=N unary=N unavailable=N".
//
// ServerStream reads x-count, x-size and x-interval-ms (a pause before each message after the
// first, honouring cancellation and counted like x-sleep-ms). Every response carries header
// x-served-by: NAME.
package grpcecho

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ServiceName is the fully qualified gRPC service name.
const ServiceName = "ringside.examples.Echo"

// MaxMsgSize is the message size limit both ends use: room for 16 MiB messages.
const MaxMsgSize = 32 << 20

// Full method names, as they appear in :path.
const (
	MethodUnary        = "/" + ServiceName + "/Unary"
	MethodStats        = "/" + ServiceName + "/Stats"
	MethodServerStream = "/" + ServiceName + "/ServerStream"
	MethodClientStream = "/" + ServiceName + "/ClientStream"
	MethodBidi         = "/" + ServiceName + "/Bidi"
)

// Server implements the Echo service.
type Server struct {
	name      string
	cancelled atomic.Int64
	// UnavailableRate is the share (0..1) of Unary calls answered UNAVAILABLE at once, as a
	// Trailers-Only response, spread evenly: call i fails when ⌊(i+1)·r⌋ > ⌊i·r⌋.
	UnavailableRate float64
	unaryCalls      atomic.Int64
	unavailable     atomic.Int64
}

// failNext reports whether the next Unary call is answered UNAVAILABLE, counting it.
func (s *Server) failNext() bool {
	i := float64(s.unaryCalls.Add(1) - 1)
	if s.UnavailableRate <= 0 || int64((i+1)*s.UnavailableRate) == int64(i*s.UnavailableRate) {
		return false
	}
	s.unavailable.Add(1)
	return true
}

// New returns the service, tagging responses with x-served-by: name.
func New(name string) *Server { return &Server{name: name} }

// Cancelled is how many handlers have seen their context end (deadline or cancellation).
func (s *Server) Cancelled() int64 { return s.cancelled.Load() }

// echoService is the handler type the ServiceDesc names; *Server implements it.
type echoService interface{ Cancelled() int64 }

// ServiceDesc describes ringside.examples.Echo, as protoc-gen-go-grpc would have.
var ServiceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*echoService)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Unary", Handler: unaryHandler},
		{MethodName: "Stats", Handler: statsHandler},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "ServerStream", Handler: serverStreamHandler, ServerStreams: true},
		{StreamName: "ClientStream", Handler: clientStreamHandler, ClientStreams: true},
		{StreamName: "Bidi", Handler: bidiHandler, ServerStreams: true, ClientStreams: true},
	},
	Metadata: "ringside/examples/echo.proto",
}

// NewGRPCServer returns a grpc.Server with the service registered and 32 MiB message limits.
func NewGRPCServer(s *Server, opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMsgSize), grpc.MaxSendMsgSize(MaxMsgSize)}, opts...)
	g := grpc.NewServer(opts...)
	g.RegisterService(&ServiceDesc, s)
	return g
}

// Pattern is the deterministic content of byte k of streamed message j.
func Pattern(j, k int) byte { return byte((j + k) % 251) }

func mdInt(md metadata.MD, key string) (int, bool, error) {
	v := md.Get(key)
	if len(v) == 0 {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil {
		return 0, true, status.Errorf(codes.InvalidArgument, "%s: %v", key, err)
	}
	return n, true, nil
}

func unaryHandler(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.BytesValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*Server)
	call := func(ctx context.Context, req any) (any, error) { return s.unary(ctx, req.(*wrapperspb.BytesValue)) }
	if icpt == nil {
		return call(ctx, in)
	}
	return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: MethodUnary}, call)
}

func (s *Server) unary(ctx context.Context, in *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	if s.failNext() {
		// Before any header metadata: a Trailers-Only response.
		return nil, status.Error(codes.Unavailable, "unavailable on purpose (-unavailable-rate)")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	echo := metadata.MD{}
	for k, v := range md {
		if strings.HasPrefix(k, "x-echo-") {
			echo[k] = v
		}
	}
	// With x-trailers-only nothing goes in the header, so a failure is a Trailers-Only
	// response: one HEADERS frame with END_STREAM carrying the status.
	if len(md.Get("x-trailers-only")) == 0 {
		header := metadata.Join(echo, metadata.Pairs("x-served-by", s.name))
		set := grpc.SetHeader
		if len(md.Get("x-send-header")) > 0 {
			set = grpc.SendHeader
		}
		if err := set(ctx, header); err != nil {
			return nil, err
		}
	}
	if err := grpc.SetTrailer(ctx, echo); err != nil {
		return nil, err
	}
	if ms, ok, err := mdInt(md, "x-sleep-ms"); err != nil {
		return nil, err
	} else if ok && len(md.Get("x-sleep-blind")) > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	} else if ok {
		if err := s.sleep(ctx, ms); err != nil {
			return nil, err
		}
	}
	if code, ok, err := mdInt(md, "x-fail-code"); err != nil {
		return nil, err
	} else if ok {
		st, err := status.New(codes.Code(code), "failing as asked").WithDetails(&wrapperspb.StringValue{Value: "detail"})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	return &wrapperspb.BytesValue{Value: in.GetValue()}, nil
}

// sleep waits ms milliseconds unless ctx ends first; then it counts the cancellation and
// returns the context's status.
func (s *Server) sleep(ctx context.Context, ms int) error {
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		s.cancelled.Add(1)
		return status.FromContextError(ctx.Err()).Err()
	}
}

func statsHandler(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
	in := new(emptypb.Empty)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*Server)
	call := func(context.Context, any) (any, error) {
		return wrapperspb.String(fmt.Sprintf("cancelled=%d unary=%d unavailable=%d", s.Cancelled(), s.unaryCalls.Load(), s.unavailable.Load())), nil
	}
	if icpt == nil {
		return call(ctx, in)
	}
	return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: MethodStats}, call)
}

func (s *Server) servedBy(stream grpc.ServerStream) error {
	return stream.SetHeader(metadata.Pairs("x-served-by", s.name))
}

func serverStreamHandler(srv any, stream grpc.ServerStream) error {
	s := srv.(*Server)
	if err := s.servedBy(stream); err != nil {
		return err
	}
	in := new(wrapperspb.BytesValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	md, _ := metadata.FromIncomingContext(stream.Context())
	count, _, err := mdInt(md, "x-count")
	if err != nil {
		return err
	}
	size, _, err := mdInt(md, "x-size")
	if err != nil {
		return err
	}
	interval, _, err := mdInt(md, "x-interval-ms")
	if err != nil {
		return err
	}
	buf := make([]byte, size)
	for j := 0; j < count; j++ {
		if j > 0 && interval > 0 {
			if err := s.sleep(stream.Context(), interval); err != nil {
				return err
			}
		}
		for k := range buf {
			buf[k] = Pattern(j, k)
		}
		if err := stream.SendMsg(&wrapperspb.BytesValue{Value: buf}); err != nil {
			return err
		}
	}
	return nil
}

func clientStreamHandler(srv any, stream grpc.ServerStream) error {
	s := srv.(*Server)
	if err := s.servedBy(stream); err != nil {
		return err
	}
	var bytes, msgs int
	for {
		in := new(wrapperspb.BytesValue)
		err := stream.RecvMsg(in)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		bytes += len(in.GetValue())
		msgs++
	}
	return stream.SendMsg(wrapperspb.Bytes([]byte(fmt.Sprintf("bytes=%d msgs=%d", bytes, msgs))))
}

func bidiHandler(srv any, stream grpc.ServerStream) error {
	s := srv.(*Server)
	if err := s.servedBy(stream); err != nil {
		return err
	}
	for {
		in := new(wrapperspb.BytesValue)
		err := stream.RecvMsg(in)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.SendMsg(in); err != nil {
			return err
		}
	}
}
