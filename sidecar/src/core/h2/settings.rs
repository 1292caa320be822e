//! Every HTTP/2 limit Ringside runs with, set explicitly: the `h2` crate's defaults include a
//! 16 MiB header list, which no sidecar should accept (DESIGN.md §5.8).

use std::time::Duration;

/// Streams a downstream client may open at once on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
/// Per-stream receive window: what a peer may send on one stream before we forward it. Large
/// enough for full loopback throughput on one stream, small enough to bound memory.
pub const STREAM_WINDOW: u32 = 1024 * 1024;
/// Per-connection receive window, shared by all streams.
pub const CONNECTION_WINDOW: u32 = 4 * 1024 * 1024;
/// The protocol's default frame size, stated rather than inherited.
pub const MAX_FRAME_SIZE: u32 = 16 * 1024;
/// HPACK dynamic table size (the protocol default).
pub const HEADER_TABLE_SIZE: u32 = 4096;
/// Streams the client reset before we accepted them (rapid reset, CVE-2023-44487): past this
/// many pending, the connection is closed with ENHANCE_YOUR_CALM.
pub const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams we had to reset because the peer broke the rules, per connection, before we give
/// up on the connection (CVE-2019-9514-style floods).
pub const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;
/// Locally reset streams remembered to ignore their late frames.
pub const MAX_CONCURRENT_RESET_STREAMS: usize = 50;
/// Outgoing bytes `h2` may buffer per stream; we also wait for window before sending.
pub const MAX_SEND_BUFFER: usize = 256 * 1024;
/// How long a reset stream is remembered.
pub const RESET_STREAM_DURATION: Duration = Duration::from_secs(1);
/// Header list limit toward upstreams (the same 64 KiB as HTTP/1 response heads).
pub const UPSTREAM_MAX_HEADER_LIST: u32 = 64 * 1024;
/// Streams we assume an upstream allows until its SETTINGS arrive (grpc-go's default is 100;
/// servers that allow fewer tell us in their first frame).
pub const UPSTREAM_INITIAL_MAX_STREAMS: usize = 100;

/// Server side (downstream clients). `max_header_list` is the listener's `max_header_bytes`.
pub fn server(max_header_list: u32) -> h2::server::Builder {
    let mut b = h2::server::Builder::new();
    b.max_header_list_size(max_header_list)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .header_table_size(HEADER_TABLE_SIZE)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESET_STREAMS))
        .max_concurrent_reset_streams(MAX_CONCURRENT_RESET_STREAMS)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .reset_stream_duration(RESET_STREAM_DURATION);
    b
}

/// Client side (upstream connections). No keepalive pings are ever sent: grpc-go servers
/// GOAWAY clients that ping more often than every 5 minutes, and dead upstream connections
/// are found by the idle timeout and by failed streams instead.
pub fn client() -> h2::client::Builder {
    let mut b = h2::client::Builder::new();
    b.max_header_list_size(UPSTREAM_MAX_HEADER_LIST)
        .max_concurrent_streams(0)
        .initial_max_send_streams(UPSTREAM_INITIAL_MAX_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .header_table_size(HEADER_TABLE_SIZE)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESET_STREAMS))
        .max_concurrent_reset_streams(MAX_CONCURRENT_RESET_STREAMS)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .reset_stream_duration(RESET_STREAM_DURATION)
        .enable_push(false);
    b
}
