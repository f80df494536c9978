//! A TCP relay on 127.0.0.1 that records what goes through it, both
//! directions of every connection, to check what is on the wire (RSV1,
//! bytes). Plain threads and blocking sockets, beside any runtime.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use juggler_deflate::frames::parse_frame;

/// Both directions of one connection.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// What the client sent.
    pub from_client: Vec<u8>,
    /// What the server sent.
    pub from_server: Vec<u8>,
}

/// A frame seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    /// FIN.
    pub fin: bool,
    /// RSV1: compressed (on the first frame of a data message).
    pub rsv1: bool,
    /// The opcode.
    pub opcode: u8,
    /// Payload bytes on the wire.
    pub len: usize,
}

/// The frames after the HTTP head in `bytes` (complete ones only).
pub fn wire_frames(bytes: &[u8]) -> Vec<WireFrame> {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Vec::new();
    };
    let mut rest = &bytes[head_end + 4..];
    let mut frames = Vec::new();
    while let Some((fin, rsv1, opcode, payload, size)) = parse_frame(rest) {
        frames.push(WireFrame {
            fin,
            rsv1,
            opcode,
            len: payload.len(),
        });
        rest = &rest[size..];
    }
    frames
}

/// Forwards every connection to a target and records it.
pub struct WireTap {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<Arc<Mutex<Recorded>>>>>,
}

impl WireTap {
    /// Starts a tap in front of `target`.
    pub fn start(target: SocketAddr) -> WireTap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tap");
        let addr = listener.local_addr().expect("the tap's address");
        let connections: Arc<Mutex<Vec<Arc<Mutex<Recorded>>>>> = Arc::default();
        let accepted = connections.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(client) = stream else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let record = Arc::new(Mutex::new(Recorded::default()));
                accepted.lock().unwrap().push(record.clone());
                forward(client, server, record);
            }
        });
        WireTap { addr, connections }
    }

    /// `ws://` URL of the tap for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// What each connection carried so far, in the order they came.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.connections
            .lock()
            .unwrap()
            .iter()
            .map(|record| record.lock().unwrap().clone())
            .collect()
    }
}

fn forward(client: TcpStream, server: TcpStream, record: Arc<Mutex<Recorded>>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    for (from_client, from, to) in [(true, &client, &server), (false, &server, &client)] {
        let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
            return;
        };
        let record = record.clone();
        thread::spawn(move || {
            let mut buffer = [0u8; 16384];
            loop {
                let read = match from.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                {
                    let mut record = record.lock().unwrap();
                    let side = if from_client {
                        &mut record.from_client
                    } else {
                        &mut record.from_server
                    };
                    side.extend_from_slice(&buffer[..read]);
                }
                if to.write_all(&buffer[..read]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}
