//! [`DeflateStream`]: the transform over a futures-io stream.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::{Inbound, Negotiated, Outbound, Violation};

/// Bytes read from the socket at a time.
const READ_SIZE: usize = 8 << 10;

/// A WebSocket byte stream with permessage-deflate taken off (reads) and
/// put on (writes): hand it to a WebSocket implementation that knows no
/// extensions, in place of the socket.
///
/// Reads yield the peer's frames with compressed messages inflated into
/// plain frames; a violation ([`Violation`]) is an
/// [`io::ErrorKind::InvalidData`] error carrying it
/// ([`Violation::of_io_error`]), and every later read fails the same way.
/// Writes take plain frames and send whole data messages of at least the
/// threshold compressed. While idle it holds no buffers and no zlib state.
#[derive(Debug)]
pub struct DeflateStream<S> {
    inner: S,
    inbound: Inbound,
    outbound: Outbound,
    /// Socket bytes not yet fed to `inbound`.
    read_in: Vec<u8>,
    /// Plain bytes not yet read, from `read_pos`.
    read_out: Vec<u8>,
    read_pos: usize,
    eof: bool,
    /// Bytes for the socket not yet written, from `write_pos`.
    write_out: Vec<u8>,
    write_pos: usize,
}

impl<S> DeflateStream<S> {
    /// Wraps `inner`, an upgraded socket on which `negotiated` was agreed;
    /// the peer's messages may inflate to at most `max_message_size` bytes.
    pub fn new(inner: S, negotiated: Negotiated, max_message_size: usize) -> Self {
        DeflateStream {
            inner,
            inbound: Inbound::new(negotiated, max_message_size),
            outbound: Outbound::new(negotiated),
            read_in: Vec::new(),
            read_out: Vec::new(),
            read_pos: 0,
            eof: false,
            write_out: Vec::new(),
            write_pos: 0,
        }
    }

    /// As [`new`](Self::new), with `read` the bytes already read from
    /// `inner` past the handshake.
    pub fn with_read(
        inner: S,
        negotiated: Negotiated,
        max_message_size: usize,
        read: Vec<u8>,
    ) -> Self {
        DeflateStream {
            read_in: read,
            ..DeflateStream::new(inner, negotiated, max_message_size)
        }
    }

    /// The socket.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether zlib state is held right now (for tests of the memory
    /// bound).
    pub fn holds_state(&self) -> bool {
        self.inbound.holds_state()
    }
}

fn violation_error(violation: Violation) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, violation)
}

impl<S: AsyncWrite + Unpin> DeflateStream<S> {
    /// Writes out what is buffered for the socket.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.write_pos < self.write_out.len() {
            let n = ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.write_out[self.write_pos..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.write_pos += n;
        }
        self.write_out = Vec::new();
        self.write_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if this.read_pos < this.read_out.len() {
                let n = (this.read_out.len() - this.read_pos).min(buf.len());
                buf[..n].copy_from_slice(&this.read_out[this.read_pos..this.read_pos + n]);
                this.read_pos += n;
                if this.read_pos == this.read_out.len() {
                    this.read_out.clear();
                    this.read_pos = 0;
                }
                return Poll::Ready(Ok(n));
            }
            // Feed what we have (or nothing: an inflater may have more).
            let consumed = this
                .inbound
                .feed(&this.read_in, &mut this.read_out)
                .map_err(violation_error)?;
            this.read_in.drain(..consumed);
            if !this.read_out.is_empty() {
                continue;
            }
            if this.eof {
                return Poll::Ready(Ok(0));
            }
            debug_assert!(this.read_in.is_empty());
            this.read_in.resize(READ_SIZE, 0);
            match Pin::new(&mut this.inner).poll_read(cx, &mut this.read_in) {
                Poll::Ready(Ok(n)) => {
                    this.read_in.truncate(n);
                    this.eof = n == 0;
                }
                Poll::Ready(Err(err)) => {
                    this.read_in.clear();
                    return Poll::Ready(Err(err));
                }
                Poll::Pending => {
                    // Idle: hold no buffers.
                    this.read_in = Vec::new();
                    this.read_out = Vec::new();
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.outbound.feed(buf, &mut this.write_out);
        // Start sending now; what is left goes on the next call or flush.
        if let Poll::Ready(Err(err)) = this.poll_drain(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_close(cx)
    }
}

/// A client's socket during and after its WebSocket handshake: until
/// [`negotiated`](Self::negotiated) it hands on the server's bytes only up
/// to the end of the HTTP response (so that the handshake code reads no
/// frame), then it goes on plain or through a [`DeflateStream`], as the
/// server's answer says.
#[derive(Debug)]
pub struct ClientStream<S> {
    mode: Mode<S>,
}

#[derive(Debug)]
enum Mode<S> {
    Handshake {
        inner: S,
        /// Bytes read past the end of the response.
        leftover: Vec<u8>,
        /// How much of `\r\n\r\n` the last bytes matched.
        matched: usize,
        done: bool,
    },
    Plain {
        inner: S,
        leftover: Vec<u8>,
    },
    Deflate(Box<DeflateStream<S>>),
    /// Between two modes.
    Gone,
}

impl<S> ClientStream<S> {
    /// Wraps a socket (TLS already on it) before the handshake.
    pub fn new(inner: S) -> Self {
        ClientStream {
            mode: Mode::Handshake {
                inner,
                leftover: Vec::new(),
                matched: 0,
                done: false,
            },
        }
    }

    /// After the handshake: on without compression (`None`) or through
    /// the deflate layer.
    pub fn negotiated(&mut self, negotiated: Option<Negotiated>, max_message_size: usize) {
        let Mode::Handshake {
            inner, leftover, ..
        } = std::mem::replace(&mut self.mode, Mode::Gone)
        else {
            panic!("ClientStream::negotiated called twice");
        };
        self.mode = match negotiated {
            None => Mode::Plain { inner, leftover },
            Some(negotiated) => Mode::Deflate(Box::new(DeflateStream::with_read(
                inner,
                negotiated,
                max_message_size,
                leftover,
            ))),
        };
    }

    /// Whether the deflate layer is on.
    pub fn is_compressed(&self) -> bool {
        matches!(self.mode, Mode::Deflate(_))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClientStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().mode {
            Mode::Handshake {
                inner,
                leftover,
                matched,
                done,
            } => {
                if *done {
                    // The handshake code reads no further than the response.
                    return Poll::Ready(Err(io::Error::other("read past the handshake response")));
                }
                let n = ready!(Pin::new(inner).poll_read(cx, buf))?;
                for (index, byte) in buf[..n].iter().enumerate() {
                    *matched = match (*matched, byte) {
                        (0 | 2, b'\r') => *matched + 1,
                        (1 | 3, b'\n') => *matched + 1,
                        (_, b'\r') => 1,
                        _ => 0,
                    };
                    if *matched == 4 {
                        *done = true;
                        leftover.extend_from_slice(&buf[index + 1..n]);
                        return Poll::Ready(Ok(index + 1));
                    }
                }
                Poll::Ready(Ok(n))
            }
            Mode::Plain { inner, leftover } => {
                if !leftover.is_empty() {
                    let n = leftover.len().min(buf.len());
                    buf[..n].copy_from_slice(&leftover[..n]);
                    leftover.drain(..n);
                    if leftover.is_empty() {
                        *leftover = Vec::new();
                    }
                    return Poll::Ready(Ok(n));
                }
                Pin::new(inner).poll_read(cx, buf)
            }
            Mode::Deflate(stream) => Pin::new(&mut **stream).poll_read(cx, buf),
            Mode::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClientStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().mode {
            Mode::Handshake { inner, .. } | Mode::Plain { inner, .. } => {
                Pin::new(inner).poll_write(cx, buf)
            }
            Mode::Deflate(stream) => Pin::new(&mut **stream).poll_write(cx, buf),
            Mode::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().mode {
            Mode::Handshake { inner, .. } | Mode::Plain { inner, .. } => {
                Pin::new(inner).poll_flush(cx)
            }
            Mode::Deflate(stream) => Pin::new(&mut **stream).poll_flush(cx),
            Mode::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().mode {
            Mode::Handshake { inner, .. } | Mode::Plain { inner, .. } => {
                Pin::new(inner).poll_close(cx)
            }
            Mode::Deflate(stream) => Pin::new(&mut **stream).poll_close(cx),
            Mode::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}
