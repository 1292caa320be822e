//! The upstream side: choosing an endpoint (`balance`, skipping those `outlier` ejected), getting a connection to it (`dial`,
//! the idle HTTP/1 `pool`, multiplexed `h2` connections), and the HTTP/1 exchange's upstream
//! half (`h1`: send, read the response head).

pub mod balance;
pub mod dial;
pub mod h1;
pub mod h2;
pub mod outlier;
pub mod pool;
