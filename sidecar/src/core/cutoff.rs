//! One counter for every client Ringside cut off for what it did (or did not do), so that an
//! operator sees abuse, and who suffers it, in one place:
//! `ringside_downstream_cutoffs_total{listener, reason}`. The `reason` label has a fixed,
//! small set of values ([`Reason`]); each cut is counted once, where it is decided.

/// Why a client connection (or HTTP/2 stream) was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An HTTP/1.1 request head not complete within `timeouts.header_read` (slowloris), or an
    /// HTTP/2 client that did not finish its handshake within it. Answered 408 on HTTP/1.1.
    HeaderRead,
    /// A response the client took none of for `timeouts.send_stall`: HTTP/1.1 connection
    /// closed, HTTP/2 stream reset (RST_STREAM CANCEL).
    SendStall,
    /// A request body slower than `limits.min_body_rate` past `timeouts.body_read`: 408 and
    /// close on HTTP/1.1, RST_STREAM CANCEL on HTTP/2.
    SlowBody,
    /// A PING or SETTINGS flood (`core/h2/flood.rs`): GOAWAY ENHANCE_YOUR_CALM.
    H2Flood,
    /// One of the `h2` crate's abuse limits (rapid reset, CONTINUATION flood, HPACK bomb,
    /// too many refused streams): GOAWAY ENHANCE_YOUR_CALM.
    H2EnhanceYourCalm,
    /// Any other HTTP/2 connection error Ringside detected (FRAME_SIZE_ERROR for an
    /// oversized frame, PROTOCOL_ERROR, COMPRESSION_ERROR...): GOAWAY with that code.
    H2ProtocolError,
}

impl Reason {
    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Reason::HeaderRead => "header_read",
            Reason::SendStall => "send_stall",
            Reason::SlowBody => "slow_body",
            Reason::H2Flood => "h2_flood",
            Reason::H2EnhanceYourCalm => "h2_enhance_your_calm",
            Reason::H2ProtocolError => "h2_protocol_error",
        }
    }

    /// The reason for an HTTP/2 connection error that ended a downstream connection, if it
    /// was Ringside's own verdict on the client (a GOAWAY the `h2` crate sent), not an I/O
    /// error, the client's GOAWAY, or a graceful shutdown.
    pub fn of_h2_error(e: &h2::Error) -> Option<Reason> {
        if !(e.is_go_away() && e.is_library()) {
            return None;
        }
        match e.reason()? {
            h2::Reason::NO_ERROR => None,
            h2::Reason::ENHANCE_YOUR_CALM => Some(Reason::H2EnhanceYourCalm),
            _ => Some(Reason::H2ProtocolError),
        }
    }
}

/// Counts one cut on `listener` (unless `--no-metrics`: `metrics` false).
pub fn count(metrics: bool, listener: &str, reason: Reason) {
    tracing::debug!(listener, reason = reason.label(), "client cut off");
    if metrics {
        metrics::counter!(
            "ringside_downstream_cutoffs_total",
            "listener" => listener.to_owned(),
            "reason" => reason.label()
        )
        .increment(1);
    }
}

/// Registers the counter's help text.
pub fn describe() {
    metrics::describe_counter!(
        "ringside_downstream_cutoffs_total",
        "Client connections or HTTP/2 streams cut off, by reason (header_read, send_stall, slow_body, h2_flood, h2_enhance_your_calm, h2_protocol_error)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_snake_case() {
        let all = [
            Reason::HeaderRead,
            Reason::SendStall,
            Reason::SlowBody,
            Reason::H2Flood,
            Reason::H2EnhanceYourCalm,
            Reason::H2ProtocolError,
        ];
        let mut labels: Vec<_> = all.iter().map(|r| r.label()).collect();
        assert!(labels.iter().all(|l| l
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())));
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
    }

    #[test]
    fn only_ringside_s_own_goaways_count() {
        let remote = h2::Error::from(h2::Reason::ENHANCE_YOUR_CALM);
        assert_eq!(
            Reason::of_h2_error(&remote),
            None,
            "a reset reason is no GOAWAY"
        );
    }
}
