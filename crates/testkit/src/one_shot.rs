//! A scripted HTTP server for the tests of Signet's own HTTP clients (the two Vault clients): it
//! answers with exactly the bytes a test wants — a redirect, an oversized body — which no real peer
//! can be made to send.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

/// Largest request kept for the test to inspect.
const MAX_REQUEST_BYTES: usize = 8192;

/// A one-shot HTTP server on 127.0.0.1: answers the first connection with `head` (status line and
/// headers, verbatim), then `body` bytes of `x`, and closes. Returns its `http://127.0.0.1:PORT`
/// address and a handle that yields the start of the request it was sent (up to 8 KiB).
pub fn one_shot_server(head: String, body: usize) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = format!(
        "http://{}",
        listener.local_addr().expect("the bound address")
    );
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a connection");
        let mut request = vec![0u8; MAX_REQUEST_BYTES];
        let n = stream.read(&mut request).unwrap_or(0);
        let _ = stream.write_all(head.as_bytes());
        let chunk = vec![b'x'; 64 << 10];
        let mut left = body;
        while left > 0 {
            let n = left.min(chunk.len());
            // The client may hang up early (that is what a size cap does).
            if stream.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n;
        }
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    (address, handle)
}
