//! Opaque TCP proxying: large transfers both ways, half-close, an unreachable upstream.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use ringside_integration::client::{wait_closed, CLOSE_BOUND};
use ringside_integration::{both_runtimes, Ringside};

/// A TCP peer that echoes everything, and half-closes after its input ends.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    thread::spawn(move || {
        for s in l.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut r = s.try_clone().expect("clone");
                let mut w = s;
                let _ = std::io::copy(&mut r, &mut w);
                let _ = w.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// A TCP peer that reads until EOF, then answers with the byte count: it only answers if the
/// client's FIN travelled through the proxy while the other direction stayed open.
fn count_then_answer_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut n = 0u64;
                let mut b = [0u8; 65536];
                while let Ok(k) = s.read(&mut b) {
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                }
                let _ = s.write_all(format!("got {n}").as_bytes());
            });
        }
    });
    addr
}

fn tcp_config(upstream: SocketAddr) -> String {
    format!(
        "listeners:\n  - {{ name: tcp, address: 127.0.0.1:0, protocol: tcp, cluster: up }}\n\
         clusters:\n  - {{ name: up, endpoints: [ {upstream} ] }}\n"
    )
}

fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(2654435761) >> 13) as u8
}

both_runtimes!(fn echoes_100_mib_both_ways(rt) {
    let proxy = Ringside::start(rt, &tcp_config(echo_server()));
    let s = TcpStream::connect(proxy.addr("tcp")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    const TOTAL: u64 = 100 * 1024 * 1024;
    let mut w = s.try_clone().expect("clone");
    let writer = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut off = 0u64;
        while off < TOTAL {
            for (j, b) in buf.iter_mut().enumerate() {
                *b = pattern(off + j as u64);
            }
            w.write_all(&buf).expect("write");
            off += buf.len() as u64;
        }
        w.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut r = s;
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        for (j, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern(got + j as u64), "corrupt byte at {}", got + j as u64);
        }
        got += n as u64;
    }
    writer.join().expect("writer");
    assert_eq!(got, TOTAL, "echo must return every byte, then EOF");
});

both_runtimes!(fn half_close_reaches_upstream_and_reply_comes_back(rt) {
    let proxy = Ringside::start(rt, &tcp_config(count_then_answer_server()));
    let mut s = TcpStream::connect(proxy.addr("tcp")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(&[7u8; 12345]).expect("write");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read after half-close");
    assert_eq!(answer, "got 12345");
});

both_runtimes!(fn unreachable_upstream_closes_the_client(rt) {
    // Port 9 (discard) is closed on loopback here: connect is refused.
    let proxy = Ringside::start(rt, &tcp_config("127.0.0.1:9".parse().expect("addr")));
    let mut s = TcpStream::connect(proxy.addr("tcp")).expect("connect");
    // A close (FIN or RST) within the bound; staying open, or sending bytes, fails.
    let how = wait_closed(&mut s, CLOSE_BOUND);
    assert!(how.is_ok(), "the client must be closed when the upstream refuses: {how:?}");
    assert!(
        proxy.wait_log("Connection refused", Duration::from_secs(5)),
        "the failure should be logged: {}",
        proxy.log_text()
    );
});
