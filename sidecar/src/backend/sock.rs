//! Socket queries both backends answer the same way, through `socket2` on the raw fd.

use std::mem::MaybeUninit;
use std::net::SocketAddr;

use socket2::SockRef;

/// Non-blocking peek shared by both backends' `is_reusable`.
pub(crate) fn peek_reusable(sock: SockRef<'_>) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    match sock.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
        // Data nobody asked for, or EOF: either way the connection cannot carry a request.
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// Non-blocking one-byte peek shared by both backends' `peek`: nothing is consumed.
pub(crate) fn peek(sock: SockRef<'_>) -> crate::core::rt::Peek {
    use crate::core::rt::Peek;
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    match sock.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
        Ok(0) => Peek::Closed,
        Ok(_) => Peek::Data,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Peek::Empty,
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Peek::Empty,
        Err(_) => Peek::Closed,
    }
}

/// `SO_LINGER` 0, shared by both backends' `reset_on_close`: the close that follows sends a
/// reset and frees the send buffer at once. Should it fail, the close is an ordinary FIN.
pub(crate) fn reset_on_close(sock: SockRef<'_>) {
    if let Err(e) = sock.set_linger(Some(std::time::Duration::ZERO)) {
        tracing::debug!("SO_LINGER 0 failed, the close will be a FIN: {e}");
    }
}

/// The socket's local address, shared by both backends.
pub(crate) fn local_addr(sock: SockRef<'_>) -> Option<SocketAddr> {
    sock.local_addr().ok()?.as_socket()
}

/// `SO_ORIGINAL_DST` (or its IPv6 twin, per the socket's family), shared by both backends.
pub(crate) fn original_dst(sock: SockRef<'_>) -> Option<SocketAddr> {
    let v6 = sock.local_addr().ok()?.is_ipv6();
    let addr = if v6 {
        sock.original_dst_v6()
    } else {
        sock.original_dst_v4()
    };
    addr.ok()?.as_socket()
}
