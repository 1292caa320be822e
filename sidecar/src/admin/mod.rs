//! The admin API (DESIGN.md §4): health, config, runtime and log level. Served from the
//! control thread, never from a data-plane worker, so a scrape or a debug request cannot slow
//! traffic, and a stuck worker cannot hide itself from the admin API.

mod clusters;
mod endpoints;
mod http;
mod pprof;
mod state;

pub use state::State;

use std::sync::Arc;

use tokio::net::TcpListener;

pub async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((mut stream, peer)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            if let Some(req) = http::read_request(&mut stream, peer).await {
                let resp = endpoints::handle(&state, &req).await;
                http::write_response(&mut stream, &resp).await;
            }
        });
    }
}
