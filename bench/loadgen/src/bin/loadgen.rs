//! Echo load generator: N connections, one request in flight on each. A
//! request is `--size` bytes written; it completes when the same bytes have
//! come back (every byte is checked). Single-threaded, epoll-driven, so it
//! stays on the one core it is pinned to and costs far less per request
//! than any of the servers it measures.
//!
//!     loadgen --addr 127.0.0.1:PORT [--connections 10] [--size 1024]
//!             [--warmup 0.5] [--duration 2] [--timeout 10]
//!
//! Requests completing during the warm-up are not counted; the measured
//! window is the `--duration` seconds after it. Prints one JSON object on
//! stdout; on any error (refused, closed, wrong bytes, timeout) prints a
//! message on stderr and exits with status 1.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferroloop_loadgen::args::Args;
use ferroloop_loadgen::epoll::{Epoll, READ, WRITE};
use ferroloop_loadgen::stats::percentile;

/// Payload bytes are `i % PERIOD` from a per-request offset; a prime period
/// makes each request's bytes differ from the previous one's, so a server
/// replaying stale data is caught.
const PERIOD: usize = 251;

struct Options {
    addr: String,
    connections: usize,
    size: usize,
    warmup: f64,
    duration: f64,
    timeout: f64,
}

struct Conn {
    stream: TcpStream,
    /// Where this request's bytes start in the pattern.
    offset: usize,
    sent: usize,
    received: usize,
    started: Instant,
    /// Registered for writability too (a write did not complete at once).
    writing: bool,
}

struct Totals {
    /// Completed inside the measured window.
    measured: u64,
    /// Completed at any time, warm-up included (the servers' CPU time
    /// is read around the whole run, so it is divided by this).
    all: u64,
    /// Latencies (ns) of requests both started and completed in the window.
    latencies: Vec<u64>,
}

fn main() -> ExitCode {
    match parse().and_then(|opts| run(&opts)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse() -> Result<Options, String> {
    let args = Args::parse(&[
        "addr",
        "connections",
        "size",
        "warmup",
        "duration",
        "timeout",
    ])?;
    let opts = Options {
        addr: args.get("addr", String::new())?,
        connections: args.get("connections", 10)?,
        size: args.get("size", 1024)?,
        warmup: args.get("warmup", 0.5)?,
        duration: args.get("duration", 2.0)?,
        timeout: args.get("timeout", 10.0)?,
    };
    if opts.addr.is_empty() {
        return Err("--addr HOST:PORT is required".into());
    }
    if opts.connections == 0 || opts.size == 0 || opts.duration <= 0.0 || opts.warmup < 0.0 {
        return Err("--connections, --size and --duration must be positive".into());
    }
    Ok(opts)
}

fn run(opts: &Options) -> Result<String, String> {
    let pattern: Vec<u8> = (0..opts.size + PERIOD)
        .map(|i| (i % PERIOD) as u8)
        .collect();
    let poll = Epoll::new().map_err(|e| format!("epoll: {e}"))?;
    let mut conns = Vec::with_capacity(opts.connections);
    for i in 0..opts.connections {
        let stream =
            TcpStream::connect(&opts.addr).map_err(|e| format!("connect {}: {e}", opts.addr))?;
        stream
            .set_nodelay(true)
            .and(stream.set_nonblocking(true))
            .map_err(|e| e.to_string())?;
        poll.add(stream.as_raw_fd(), i as u64, READ)
            .map_err(|e| e.to_string())?;
        let offset = i * 31 % PERIOD; // connections send different bytes too
        conns.push(Conn {
            stream,
            offset,
            sent: 0,
            received: 0,
            started: Instant::now(),
            writing: false,
        });
    }

    let t0 = Instant::now();
    let window_start = t0 + Duration::from_secs_f64(opts.warmup);
    let window_end = window_start + Duration::from_secs_f64(opts.duration);
    let deadline = window_end + Duration::from_secs_f64(opts.timeout);
    let mut totals = Totals {
        measured: 0,
        all: 0,
        latencies: Vec::new(),
    };
    for (i, conn) in conns.iter_mut().enumerate() {
        start_request(conn, i, &poll, &pattern, opts.size)?;
    }

    let mut in_flight = conns.len();
    let mut events = Vec::new();
    // Big enough that a 100 KiB echo rarely takes more than two reads.
    let mut buf = vec![0u8; 256 * 1024];
    while in_flight > 0 {
        if Instant::now() > deadline {
            return Err(format!(
                "{in_flight} request(s) still unanswered {}s after the run ended",
                opts.timeout
            ));
        }
        // A timeout, so a server that stops answering is noticed.
        poll.wait(&mut events, 100)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        for ev in &events {
            let i = ev.token as usize;
            let conn = &mut conns[i];
            if ev.writable() && conn.sent < opts.size {
                write_some(conn, i, &poll, &pattern, opts.size)?;
            }
            if !ev.readable() {
                continue;
            }
            // One request per readiness event: its answer can't be back yet,
            // and reading to find that out would be a wasted syscall.
            if read_some(conn, i, &mut buf, &pattern, opts.size)? {
                let now = Instant::now();
                totals.all += 1;
                if now >= window_start && now < window_end {
                    totals.measured += 1;
                    if conn.started >= window_start {
                        totals
                            .latencies
                            .push((now - conn.started).as_nanos() as u64);
                    }
                }
                if now >= window_end {
                    // This connection is done: no more events from it.
                    poll.delete(conn.stream.as_raw_fd())
                        .map_err(|e| e.to_string())?;
                    in_flight -= 1;
                    continue;
                }
                conn.offset = (conn.offset + 1) % PERIOD;
                start_request(conn, i, &poll, &pattern, opts.size)?;
            }
        }
    }
    Ok(report(opts, totals, t0.elapsed().as_secs_f64()))
}

/// (user, system) CPU seconds this process used: with the wall time, says
/// whether the load generator itself was near saturating its core.
fn own_cpu() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

fn start_request(
    conn: &mut Conn,
    i: usize,
    poll: &Epoll,
    pattern: &[u8],
    size: usize,
) -> Result<(), String> {
    conn.sent = 0;
    conn.received = 0;
    conn.started = Instant::now();
    write_some(conn, i, poll, pattern, size)
}

/// Writes as much of the request as the socket takes; asks for writability
/// while some is left and drops that interest once all is sent.
fn write_some(
    conn: &mut Conn,
    i: usize,
    poll: &Epoll,
    pattern: &[u8],
    size: usize,
) -> Result<(), String> {
    let fd = conn.stream.as_raw_fd();
    while conn.sent < size {
        match conn
            .stream
            .write(&pattern[conn.offset + conn.sent..conn.offset + size])
        {
            Ok(n) => conn.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !conn.writing {
                    poll.modify(fd, i as u64, READ | WRITE)
                        .map_err(|e| e.to_string())?;
                    conn.writing = true;
                }
                return Ok(());
            }
            Err(e) => return Err(format!("connection {i}: write: {e}")),
        }
    }
    if conn.writing {
        poll.modify(fd, i as u64, READ).map_err(|e| e.to_string())?;
        conn.writing = false;
    }
    Ok(())
}

/// Reads until the socket is drained or the request is complete (true),
/// checking every byte against what was sent. A read shorter than the
/// buffer emptied the socket: rather than a read that would fail with
/// EAGAIN, wait for the next readiness event.
fn read_some(
    conn: &mut Conn,
    i: usize,
    buf: &mut [u8],
    pattern: &[u8],
    size: usize,
) -> Result<bool, String> {
    while conn.received < size {
        let n = match conn.stream.read(buf) {
            Ok(0) => return Err(format!("connection {i}: server closed the connection")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(format!("connection {i}: read: {e}")),
        };
        if conn.received + n > conn.sent {
            return Err(format!(
                "connection {i}: got {} bytes back, only {} were sent",
                conn.received + n,
                conn.sent
            ));
        }
        let start = conn.offset + conn.received;
        if buf[..n] != pattern[start..start + n] {
            let at = buf[..n]
                .iter()
                .zip(&pattern[start..])
                .position(|(a, b)| a != b);
            return Err(format!(
                "connection {i}: echoed byte {} differs from the one sent",
                conn.received + at.unwrap_or(0)
            ));
        }
        conn.received += n;
        if n < buf.len() && conn.received < size {
            return Ok(false);
        }
    }
    Ok(true)
}

fn report(opts: &Options, mut totals: Totals, wall: f64) -> String {
    let (user, system) = own_cpu();
    totals.latencies.sort_unstable();
    let lat = &totals.latencies;
    let us = |ns: u64| ns as f64 / 1000.0;
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().sum::<u64>() as f64 / lat.len() as f64
    };
    format!(
        concat!(
            "{{\"addr\": \"{}\", \"connections\": {}, \"size\": {}, \"warmup_s\": {}, ",
            "\"duration_s\": {}, \"requests\": {}, \"requests_per_s\": {:.1}, ",
            "\"total_requests\": {}, \"latency_us\": {{\"samples\": {}, \"mean\": {:.1}, ",
            "\"p50\": {:.1}, \"p90\": {:.1}, \"p99\": {:.1}, \"p99_9\": {:.1}, \"max\": {:.1}}}, ",
            "\"loadgen\": {{\"wall_s\": {:.3}, \"user_s\": {:.3}, \"system_s\": {:.3}}}}}"
        ),
        opts.addr,
        opts.connections,
        opts.size,
        opts.warmup,
        opts.duration,
        totals.measured,
        totals.measured as f64 / opts.duration,
        totals.all,
        lat.len(),
        mean / 1000.0,
        us(percentile(lat, 50.0)),
        us(percentile(lat, 90.0)),
        us(percentile(lat, 99.0)),
        us(percentile(lat, 99.9)),
        us(lat.last().copied().unwrap_or(0)),
        wall,
        user,
        system,
    )
}
