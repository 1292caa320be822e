//! An HTTP/1.1 upstream that holds requests for `/hold…` until the test releases them, and
//! tells the test when each arrived: the event tests wait on instead of sleeping ("the request
//! is in flight" is a fact, not a guess after 200 ms).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What the held upstream has seen, shared with its connection threads.
#[derive(Debug, Default)]
struct State {
    /// Heads of the `/hold…` requests received so far (request line and header lines).
    heads: Mutex<Vec<String>>,
    arrived: Condvar,
    released: AtomicBool,
    connections: AtomicUsize,
    /// Every request, held or not.
    all: AtomicUsize,
    /// Connections open now (accepted and not yet closed by the proxy).
    open: AtomicUsize,
}

/// The upstream. Dropping it releases nothing; its threads end with their connections.
#[derive(Debug)]
pub struct HeldUpstream {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl HeldUpstream {
    /// Listens on a `:0` loopback port. A request for `/hold…` is answered `200` with body
    /// `held` once [`HeldUpstream::release`] was called (at once if it already was); any other
    /// request is answered `200` `done` at once.
    pub fn start() -> HeldUpstream {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind held upstream");
        let addr = l.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                st.connections.fetch_add(1, Ordering::SeqCst);
                st.open.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                std::thread::spawn(move || {
                    serve(s, &st);
                    st.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        HeldUpstream { addr, state }
    }

    /// Blocks until `n` `/hold` requests have arrived in all, at most `within`; panics otherwise.
    pub fn wait_requests(&self, n: usize, within: Duration) -> Vec<String> {
        let end = Instant::now() + within;
        let mut heads = self.state.heads.lock().expect("heads");
        while heads.len() < n {
            let left = end.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {n} requests reached the held upstream within {within:?}",
                heads.len()
            );
            heads = self
                .state
                .arrived
                .wait_timeout(heads, left)
                .expect("wait")
                .0;
        }
        heads.clone()
    }

    /// How many `/hold` requests have arrived so far.
    pub fn requests(&self) -> usize {
        self.state.heads.lock().expect("heads").len()
    }

    /// How many requests of any kind have arrived.
    pub fn all_requests(&self) -> usize {
        self.state.all.load(Ordering::SeqCst)
    }

    /// How many TCP connections the upstream accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections the proxy has open to the upstream now.
    pub fn open_connections(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Answers every held request, and every later one at once.
    pub fn release(&self) {
        self.state.released.store(true, Ordering::SeqCst);
    }
}

fn serve(mut s: TcpStream, st: &State) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        // Requests here are bodiless (GET): anything after the head is the next request.
        st.all.fetch_add(1, Ordering::SeqCst);
        let hold = head
            .split(' ')
            .nth(1)
            .is_some_and(|t| t.starts_with("/hold"));
        if hold {
            let mut heads = st.heads.lock().expect("heads");
            heads.push(head);
            st.arrived.notify_all();
        }
        while hold && !st.released.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let answer: &[u8] = if hold {
            b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nheld"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone"
        };
        if s.write_all(answer).is_err() {
            return;
        }
    }
}
