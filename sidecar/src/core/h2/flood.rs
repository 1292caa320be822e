//! Control-frame flood detection on a downstream HTTP/2 connection (CVE-2019-9512 PING
//! flood, CVE-2019-9515 SETTINGS flood). The `h2` crate answers every PING and SETTINGS
//! (one at a time, so a flooder that does not read stalls itself), but one that reads can
//! keep a worker busy answering them, starving every other connection on it, and control
//! frames are no activity, so nothing else ends it. This reads the frame headers (RFC 9113
//! §4.1) in the bytes the connection receives, counts the frames that demand a reply, and
//! reports a flood past [`MAX_PER_SECOND`] in one second with no request traffic between
//! them; `down/h2.rs` then closes the connection with GOAWAY(ENHANCE_YOUR_CALM) (RFC 9113
//! §5.4.1, §7).
//!
//! Request traffic (HEADERS, DATA, WINDOW_UPDATE) starts the count afresh, as grpc-go's own
//! server counts "ping strikes" only between data: grpc-go clients ping for BDP estimation
//! after every burst of data they receive, which on a busy bidirectional stream is far more
//! than a hundred a second, each one legitimate.

use std::time::{Duration, Instant};

/// PING and SETTINGS frames (without ACK) a client may send in one second. Real clients
/// send a few: Go and grpc-go ping for keepalive and BDP estimation at most a few times a
/// second, and SETTINGS once or twice per connection.
pub const MAX_PER_SECOND: u32 = 100;

const HEADER: usize = 9;
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const WINDOW_UPDATE: u8 = 8;
const ACK: u8 = 1;

/// Follows the frame boundaries of one direction of an HTTP/2 connection.
#[derive(Debug)]
pub struct ControlFrames {
    /// Bytes still to skip: the client preface, then each frame's payload.
    skip: usize,
    header: [u8; HEADER],
    have: usize,
    window_start: Instant,
    in_window: u32,
}

impl ControlFrames {
    /// For a client's bytes from the start of the connection (at `now`): the first
    /// `preface` bytes (the connection preface, RFC 9113 §3.4) are not frames.
    pub fn new(preface: usize, now: Instant) -> Self {
        Self {
            skip: preface,
            header: [0; HEADER],
            have: 0,
            window_start: now,
            in_window: 0,
        }
    }

    /// Feeds the next bytes the client sent; true once a flood was seen (and from then on).
    pub fn feed(&mut self, mut bytes: &[u8], now: Instant) -> bool {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < HEADER {
                break;
            }
            self.have = 0;
            let h = self.header;
            self.skip = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
            if matches!(h[3], SETTINGS | PING) && h[4] & ACK == 0 {
                self.count(now);
            } else if matches!(h[3], DATA | HEADERS | WINDOW_UPDATE)
                && self.in_window <= MAX_PER_SECOND
            {
                self.in_window = 0;
            }
        }
        self.in_window > MAX_PER_SECOND
    }

    fn count(&mut self, now: Instant) {
        if self.in_window > MAX_PER_SECOND {
            return;
        }
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.in_window = 0;
        }
        self.in_window += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![
            0,
            (payload >> 8) as u8,
            payload as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        f.extend(vec![0u8; payload]);
        f
    }

    #[test]
    fn a_ping_flood_is_seen_split_anywhere_and_acks_and_data_are_not_counted() {
        let now = Instant::now();
        let mut c = ControlFrames::new(24, now);
        let mut bytes = vec![b'P'; 24];
        for _ in 0..1000 {
            bytes.extend(frame(PING, ACK, 8));
            bytes.extend(frame(0, 0, 300));
        }
        for chunk in bytes.chunks(7) {
            assert!(!c.feed(chunk, now));
        }
        let pings: Vec<u8> = (0..=MAX_PER_SECOND)
            .flat_map(|_| frame(PING, 0, 8))
            .collect();
        // The last frame's header is cut in two: it counts once complete.
        let (a, b) = pings.split_at(pings.len() - 12);
        assert!(!c.feed(a, now));
        assert!(c.feed(b, now));
        assert!(
            c.feed(&[], now + Duration::from_secs(5)),
            "a flood stays seen"
        );
    }

    #[test]
    fn pings_between_request_traffic_are_no_flood() {
        // grpc-go's BDP pings on a busy bidirectional stream: one per message received.
        let now = Instant::now();
        let mut c = ControlFrames::new(0, now);
        for i in 0..10 * MAX_PER_SECOND {
            let between = [DATA, HEADERS, WINDOW_UPDATE][(i % 3) as usize];
            assert!(!c.feed(&frame(PING, 0, 8), now));
            assert!(!c.feed(&frame(between, 0, 4), now));
        }
        // Request traffic does not excuse a flood already seen, nor one without it.
        let pings: Vec<u8> = (0..=MAX_PER_SECOND)
            .flat_map(|_| frame(PING, 0, 8))
            .collect();
        assert!(c.feed(&pings, now));
        assert!(c.feed(&frame(DATA, 0, 4), now), "a flood stays seen");
    }

    #[test]
    fn settings_at_a_steady_pace_are_no_flood() {
        let start = Instant::now();
        let mut c = ControlFrames::new(0, start);
        for s in 0..10u64 {
            for _ in 0..MAX_PER_SECOND {
                assert!(!c.feed(&frame(SETTINGS, 0, 6), start + Duration::from_secs(s)));
            }
        }
        assert!(c.feed(&frame(SETTINGS, 0, 6), start + Duration::from_millis(9500)));
    }
}
