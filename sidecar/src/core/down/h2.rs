//! A downstream HTTP/2 connection: the handshake, then every stream the client opens, served
//! concurrently inside this one connection task (a `FuturesUnordered`; no task per stream).
//!
//! Idle and drain handling match HTTP/1: the connection holds no timer of its own; the worker's
//! sweep kicks it when its idle deadline passes, a drain begins or the config changes, and it
//! answers with GOAWAY (graceful: streams in flight finish).

use crate::core::wire::Wire;
use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::h2_stream::{self, StreamCtx};
use crate::core::bridge::stall::Progress;
use crate::core::conns::{Conn, Protocol};
use crate::core::cutoff::{self, Reason};
use crate::core::h2::rewind::Rewind;
use crate::core::h2::settings;
use crate::core::rt::{timeout, Rt, Stream};
use crate::core::shed::RequestSlot;
use crate::core::worker::Worker;

enum Event<T> {
    Stream(T),
    Kicked,
    Closed,
}

pub async fn serve<R: Rt>(
    w: &Worker<R>,
    down: Wire<R::Stream>,
    preface: BytesMut,
    peer: SocketAddr,
    listener: Rc<str>,
    conn: &Conn,
) {
    conn.protocol.set(Protocol::Http2);
    let (handshake_within, idle, max_header_list) = {
        let snap = w.snapshot();
        let Some(spec) = snap.listener(&listener) else {
            return;
        };
        // The listener's limits are checked per request (`limits::check_h2`), counted as
        // HTTP/1.1 counts them; the transport limit only bounds memory.
        let max = super::limits::h2_transport_limit(spec.max_header_bytes, spec.max_headers);
        (spec.header_read_timeout, spec.idle_timeout, max)
    };
    // Set by the connection's reads when the client floods PING or SETTINGS frames.
    let flooded = Cell::new(false);
    let io = match down.into_io() {
        Ok(io) => Rewind::new(io, preface.freeze(), Some(conn)).watch_floods(&flooded),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "cannot switch the connection to HTTP/2");
            return;
        }
    };
    let hs = settings::server(max_header_list).handshake::<_, Bytes>(io);
    let mut h2 = match timeout::<R, _>(handshake_within, hs).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "h2 handshake failed");
            return;
        }
        Err(_) => {
            cutoff::count(!w.opts.no_metrics, &listener, Reason::HeaderRead);
            return;
        }
    };
    let client_ip = peer.ip().to_string();
    let progress = Progress::new();
    let ctx = StreamCtx {
        w,
        peer,
        client_ip: &client_ip,
        listener: &listener,
        conn,
        progress: &progress,
    };
    let metrics = !w.opts.no_metrics;
    let mut streams = FuturesUnordered::new();
    // When the graceful GOAWAY was sent. The shutdown then waits on the client (h2 follows
    // the GOAWAY with a PING and waits for its ack); a client that never acks nor closes
    // would hold the connection for ever, so with no stream left it gets `handshake_within`
    // (the listener's `header_read` timeout) to finish, then the connection is closed.
    let mut going_away: Option<Instant> = None;
    // Always set, even with streams open: the worker's sweep kicks only connections with a
    // deadline, and a drain must reach busy connections too.
    let mut last_active = Instant::now();
    let mut calmed = false;
    loop {
        let mut kicked = pin!(conn.kicked());
        let event = poll_fn(|cx| {
            while let Poll::Ready(Some(())) = streams.poll_next_unpin(cx) {
                last_active = Instant::now();
            }
            let deadline = match going_away {
                Some(at) if streams.is_empty() => at + handshake_within,
                _ => last_active + idle,
            };
            conn.set_idle_until(Some(deadline));
            conn.in_flight.set(!streams.is_empty());
            if flooded.get() && !calmed {
                // GOAWAY(ENHANCE_YOUR_CALM) at once, streams and all (RFC 9113 §5.4.1): a
                // flooder's streams are not worth finishing. poll_accept then ends.
                calmed = true;
                tracing::debug!(%peer, "h2 control-frame flood; closing");
                cutoff::count(metrics, &listener, Reason::H2Flood);
                h2.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
            }
            if progress.stuck() && going_away.is_none() {
                // A stream was cut for a send stall and nothing moved on the connection all
                // that time (`bridge::stall::Progress`): GOAWAY, so that no new stream meets
                // the same fate; streams still in flight are cut by their own stall, and the
                // close follows `handshake_within` after the last (the client may be reading
                // nothing, not even the GOAWAY).
                tracing::debug!(%peer, "h2 connection makes no send progress; going away");
                going_away = Some(Instant::now());
                h2.graceful_shutdown();
            }
            match h2.poll_accept(cx) {
                Poll::Ready(Some(Ok(s))) => return Poll::Ready(Event::Stream(s)),
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!(%peer, error = %e, "h2 connection error");
                    if let (false, Some(reason)) = (calmed, Reason::of_h2_error(&e)) {
                        cutoff::count(metrics, &listener, reason);
                    }
                    return Poll::Ready(Event::Closed);
                }
                Poll::Ready(None) => return Poll::Ready(Event::Closed),
                Poll::Pending => {}
            }
            kicked.as_mut().poll(cx).map(|()| Event::Kicked)
        })
        .await;
        match event {
            Event::Stream((req, mut respond)) => {
                last_active = Instant::now();
                conn.requests.set(conn.requests.get() + 1);
                match conn.load().admit_request(w.max_requests(&listener)) {
                    Ok(slot) => {
                        conn.in_flight.set(true);
                        streams.push(admitted(slot, h2_stream::handle(&ctx, req, respond)));
                    }
                    // RFC 9113 §8.7: REFUSED_STREAM tells the client the request was not
                    // processed, so it may send it again, here later or elsewhere.
                    Err(_) => {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        crate::core::shed::count_shed(!w.opts.no_metrics, &listener);
                    }
                }
            }
            Event::Kicked => {
                let draining =
                    w.lifecycle.is_draining() || w.snapshot().listener(&listener).is_none();
                let idled = streams.is_empty() && last_active.elapsed() >= idle;
                if let Some(at) = going_away {
                    if streams.is_empty() && at.elapsed() >= handshake_within {
                        tracing::debug!(%peer, "h2 client did not finish the shutdown; closing");
                        break;
                    }
                } else if draining || idled {
                    // GOAWAY with the last stream id: streams in flight finish, then the
                    // connection closes by itself (poll_accept ends).
                    going_away = Some(Instant::now());
                    h2.graceful_shutdown();
                }
                if !streams.is_empty() {
                    // Busy past the idle deadline: not idle, so push the deadline out.
                    last_active = Instant::now();
                }
            }
            Event::Closed => break,
        }
    }
    conn.set_idle_until(None);
}

/// A stream's work, holding its place under the listener's `max_requests` until it ends.
async fn admitted<F: Future<Output = ()>>(slot: Option<RequestSlot<'_>>, stream: F) {
    stream.await;
    drop(slot);
}
