//! `GET /debug/pprof/profile?seconds=N`: a CPU profile of every thread (workers included, on
//! either runtime) in the gzipped protobuf format `go tool pprof` reads, the same URL and format
//! a Go service serves from net/http/pprof.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pprof::protos::Message;

use super::http::Response;

/// Sampling rate, as Go's default: 100 Hz would alias with 10 ms timers, so 99.
const HZ: i32 = 99;
const MAX_SECONDS: u64 = 300;

/// The profiler is process-global (SIGPROF): one profile at a time.
static BUSY: AtomicBool = AtomicBool::new(false);

pub async fn cpu(seconds: Option<&str>) -> Response {
    let seconds = match seconds.map(str::parse::<u64>) {
        None => 30,
        Some(Ok(s)) if (1..=MAX_SECONDS).contains(&s) => s,
        _ => return Response::text(400, format!("seconds must be 1..={MAX_SECONDS}\n")),
    };
    if BUSY.swap(true, Ordering::AcqRel) {
        return Response::text(409, "a CPU profile is already being taken\n");
    }
    let result = profile(Duration::from_secs(seconds)).await;
    BUSY.store(false, Ordering::Release);
    match result {
        Ok(body) => Response::bytes("application/octet-stream", body),
        Err(e) => Response::text(500, format!("profiling failed: {e}\n")),
    }
}

async fn profile(d: Duration) -> anyhow::Result<Vec<u8>> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(HZ)
        // Unwinding through these from a signal handler can deadlock or crash.
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()?;
    tokio::time::sleep(d).await;
    let report = guard.report().build()?;
    drop(guard);
    let encoded = report.pprof()?.encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&encoded)?;
    Ok(gz.finish()?)
}
