//! A TCP relay on 127.0.0.1 that cuts its connections at random points
//! mid-stream, for the reconnecting client's tests. Plain threads and
//! blocking sockets, so that it runs beside any async runtime.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// Forwards every connection to a target; while cutting, closes each after
/// a random number of bytes (both directions together).
pub struct CuttingRelay {
    addr: SocketAddr,
    shared: Arc<RelayShared>,
}

struct RelayShared {
    target: SocketAddr,
    cutting: AtomicBool,
    stopped: AtomicBool,
    cuts: AtomicUsize,
    /// xorshift state: the byte counts at which connections are cut.
    random: AtomicU64,
    min_bytes: u64,
    max_bytes: u64,
}

impl CuttingRelay {
    /// Starts a relay to `target` that cuts each connection after between
    /// `min_bytes` and `max_bytes` bytes, drawn from `seed`.
    pub fn start(target: SocketAddr, seed: u64, min_bytes: u64, max_bytes: u64) -> CuttingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let shared = Arc::new(RelayShared {
            target,
            cutting: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            cuts: AtomicUsize::new(0),
            random: AtomicU64::new(seed.max(1)),
            min_bytes,
            max_bytes,
        });
        let accepting = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = stream else { continue };
                let Ok(server) = TcpStream::connect(accepting.target) else {
                    continue;
                };
                relay(accepting.clone(), client, server);
            }
        });
        CuttingRelay { addr, shared }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it has cut.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Cuts again from now on, open connections included (each after its
    /// budget of bytes).
    pub fn start_cutting(&self) {
        self.shared.cutting.store(true, Ordering::SeqCst);
    }

    /// Forwards everything from now on, open connections included.
    pub fn stop_cutting(&self) {
        self.shared.cutting.store(false, Ordering::SeqCst);
    }
}

impl Drop for CuttingRelay {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stopped`.
        let _ = TcpStream::connect(self.addr);
    }
}

impl RelayShared {
    fn next_budget(&self) -> u64 {
        let mut x = self.random.load(Ordering::SeqCst);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::SeqCst);
        self.min_bytes + x % (self.max_bytes - self.min_bytes + 1)
    }
}

/// One connection: a thread per direction, sharing the byte count.
fn relay(shared: Arc<RelayShared>, client: TcpStream, server: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let budget = shared.next_budget();
    let forwarded = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    for (from, to) in [(&client, &server), (&server, &client)] {
        let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
            return;
        };
        let (shared, forwarded, cut) = (shared.clone(), forwarded.clone(), cut.clone());
        let (ends_a, ends_b) = (from.try_clone(), to.try_clone());
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                let read = match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                let total = forwarded.fetch_add(read as u64, Ordering::SeqCst) + read as u64;
                if shared.cutting.load(Ordering::SeqCst) && total > budget {
                    // Part of what was read goes through, then the cut.
                    let part = (read / 2).max(1);
                    let _ = to.write_all(&buffer[..part]);
                    if !cut.swap(true, Ordering::SeqCst) {
                        shared.cuts.fetch_add(1, Ordering::SeqCst);
                    }
                    break;
                }
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            for end in [ends_a, ends_b].into_iter().flatten() {
                let _ = end.shutdown(Shutdown::Both);
            }
        });
    }
}
