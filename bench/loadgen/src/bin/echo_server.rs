//! The ceiling: a raw single-threaded epoll echo server, doing per request
//! what the Python servers do (read what arrived, write it back) with no
//! event loop framework in between.
//!
//!     echo-server [--addr 127.0.0.1:0]
//!
//! Prints the bound port on one line of stdout, then serves until killed.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use ferroloop_loadgen::args::Args;
use ferroloop_loadgen::epoll::{Epoll, Event, READ, WRITE};

/// Read size per call: what asyncio's and uvloop's transports read at once
/// (the Python streams and sock_* servers ask for 64 KiB).
const BUF: usize = 256 * 1024;
const LISTENER: u64 = u64::MAX;

struct Conn {
    stream: TcpStream,
    buf: Box<[u8]>,
    /// Bytes of `buf` read but not yet written back.
    pending: std::ops::Range<usize>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = Args::parse(&["addr"])?;
    let addr: String = args.get("addr", "127.0.0.1:0".to_string())?;
    let listener = TcpListener::bind(&addr).map_err(|e| format!("bind {addr}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let poll = Epoll::new().map_err(|e| e.to_string())?;
    poll.add(listener.as_raw_fd(), LISTENER, READ)
        .map_err(|e| e.to_string())?;
    println!("{port}");
    io::stdout().flush().map_err(|e| e.to_string())?;

    // Slab of connections; the token is the index.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = Vec::new();
    loop {
        poll.wait(&mut events, -1)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        for ev in &events {
            if ev.token == LISTENER {
                accept_all(&listener, &poll, &mut conns);
                continue;
            }
            let idx = ev.token as usize;
            let Some(conn) = conns[idx].as_mut() else {
                continue;
            };
            if let Err(e) = serve(conn, ev, &poll, ev.token) {
                // A client going away is normal at the end of a run.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                ) {
                    eprintln!("echo-server: connection {idx}: {e}");
                }
                let _ = poll.delete(conn.stream.as_raw_fd());
                conns[idx] = None;
            }
        }
    }
}

fn accept_all(listener: &TcpListener, poll: &Epoll, conns: &mut Vec<Option<Conn>>) {
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                eprintln!("echo-server: accept: {e}");
                return;
            }
        };
        // Same socket options as asyncio's and uvloop's transports.
        if stream
            .set_nodelay(true)
            .and(stream.set_nonblocking(true))
            .is_err()
        {
            continue;
        }
        let idx = conns.iter().position(Option::is_none).unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        if poll.add(stream.as_raw_fd(), idx as u64, READ).is_ok() {
            conns[idx] = Some(Conn {
                stream,
                buf: vec![0; BUF].into_boxed_slice(),
                pending: 0..0,
            });
        }
    }
}

/// Handles one readiness event. While a write is incomplete the connection
/// waits for writability only and stops reading (back-pressure, as the
/// Python servers get from their transports).
fn serve(conn: &mut Conn, ev: &Event, poll: &Epoll, token: u64) -> io::Result<()> {
    let fd = conn.stream.as_raw_fd();
    if conn.pending.is_empty() && ev.readable() {
        let n = match conn.stream.read(&mut conn.buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        conn.pending = 0..n;
        if flush(conn)? {
            return Ok(());
        }
        return poll.modify(fd, token, WRITE);
    }
    if !conn.pending.is_empty() && ev.writable() && flush(conn)? {
        return poll.modify(fd, token, READ);
    }
    Ok(())
}

/// Writes what is pending; true once nothing is left.
fn flush(conn: &mut Conn) -> io::Result<bool> {
    while !conn.pending.is_empty() {
        match conn.stream.write(&conn.buf[conn.pending.clone()]) {
            Ok(n) => conn.pending.start += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
