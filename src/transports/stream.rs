//! `StreamCore`: the state of a socket transport, and its read path.
//!
//! A transport's behaviour is asyncio's `_SelectorSocketTransport`'s: same
//! callback order, same error messages, same flow control. The Python
//! `SocketTransport` owns one `StreamCore` and forwards to it; the loop's
//! reader and writer handles call `_read_ready`/`_write_ready` here directly.
//!
//! Locking: `state` is held only for short stretches with no Python code
//! running and no Python object dropped (see `eventloop/mod.rs`).

use super::buffer::BufferView;
use super::is_exit;
use super::recv::{offer_spare, recv_into, recv_reusing, Received};
use crate::core::write_buffer::WriteBuffer;
use crate::errors::os_error;
use crate::eventloop::{LoopBase, NativeCall, NativeFn, Slot};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::{intern, PyTraverseError, PyVisit};

/// asyncio's default write-buffer limits.
pub(crate) const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// Everything a transport knows; see asyncio's `_SelectorTransport`.
pub(crate) struct StreamState {
    /// The socket's fd (kept after close, for reprs).
    pub(crate) fd: i32,
    /// The loop; None once the connection is lost.
    pub(crate) event_loop: Option<Py<LoopBase>>,
    /// The Python `SocketTransport` owning this core: what protocols and
    /// exception handlers are given as "the transport".
    pub(crate) outer: Option<Py<PyAny>>,
    /// The Python socket object; None once closed.
    pub(crate) sock: Option<Py<PyAny>>,
    /// The protocol; None once the connection is lost.
    pub(crate) protocol: Option<Py<PyAny>>,
    /// The protocol is an `asyncio.BufferedProtocol`.
    pub(crate) buffered: bool,
    /// `connection_lost` is due to the protocol (set by `set_protocol`).
    pub(crate) protocol_connected: bool,
    /// Bytes accepted by `write` that the kernel has not taken yet.
    pub(crate) buffer: WriteBuffer,
    /// Non-zero once `connection_lost` is scheduled; then counts writes
    /// attempted after it (asyncio warns past a threshold).
    pub(crate) conn_lost: u32,
    /// `close()` or a fatal error happened.
    pub(crate) closing: bool,
    /// `pause_reading()` is in effect.
    pub(crate) paused: bool,
    /// `write_eof()` was called.
    pub(crate) eof: bool,
    /// The protocol was told to pause writing.
    pub(crate) protocol_paused: bool,
    /// Write-buffer high-water mark.
    pub(crate) high: usize,
    /// Write-buffer low-water mark.
    pub(crate) low: usize,
    /// Future completed when the buffer empties (sendfile waits on it).
    pub(crate) empty_waiter: Option<Py<PyAny>>,
}

/// The Rust half of a socket transport.
#[pyclass(frozen, module = "ferroloop._ferroloop")]
pub struct StreamCore {
    /// All mutable state; see the module comment on locking.
    pub(crate) state: Mutex<StreamState>,
}

/// `asyncio.BufferedProtocol`, looked up once.
fn buffered_protocol_type(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static TYPE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    TYPE.get_or_try_init(py, || {
        Ok(py.import("asyncio")?.getattr("BufferedProtocol")?.unbind())
    })
    .map(|t| t.bind(py))
}

/// What a callback needs to talk to the world, cloned out of the lock.
pub(crate) struct Parts {
    /// The socket's fd.
    pub(crate) fd: i32,
    /// The loop the transport runs on.
    pub(crate) event_loop: Py<LoopBase>,
    /// The current protocol.
    pub(crate) protocol: Py<PyAny>,
    /// The Python `SocketTransport`.
    pub(crate) outer: Py<PyAny>,
}

impl StreamCore {
    /// The fd, loop, protocol and outer transport, or None when the
    /// connection is already lost.
    pub(crate) fn parts(&self, py: Python<'_>) -> Option<Parts> {
        let st = self.state.lock();
        Some(Parts {
            fd: st.fd,
            event_loop: st.event_loop.as_ref()?.clone_ref(py),
            protocol: st.protocol.as_ref()?.clone_ref(py),
            outer: st.outer.as_ref()?.clone_ref(py),
        })
    }

    /// Calls the outer transport's `_fatal_error(exc, message)`, which
    /// reports and force-closes; `SystemExit`/`KeyboardInterrupt` propagate.
    pub(crate) fn fatal_error(
        py: Python<'_>,
        outer: &Bound<'_, PyAny>,
        err: PyErr,
        message: &str,
    ) -> PyResult<()> {
        if is_exit(py, &err) {
            return Err(err);
        }
        outer.call_method1(intern!(py, "_fatal_error"), (err.into_value(py), message))?;
        Ok(())
    }

    /// Starts watching the fd for reading, unless reading is paused or the
    /// transport is closing (asyncio's `_add_reader` on the transport).
    pub(crate) fn start_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let (fd, event_loop, shown) = {
            let st = slf.get().state.lock();
            if st.closing || st.paused {
                return Ok(());
            }
            match &st.event_loop {
                Some(l) => (
                    st.fd,
                    l.clone_ref(py),
                    st.outer.as_ref().map(|o| o.clone_ref(py)),
                ),
                None => return Ok(()),
            }
        };
        Self::watch(slf, event_loop.bind(py), fd, Slot::Reader, shown)
    }

    /// Installs the loop's reader or writer handle for this transport. It
    /// shows (`_callback`, reprs) the transport's bound `_read_ready` or
    /// `_write_ready`, as on the stock loop, where the handle calls it
    /// (`<Handle SocketTransport._read_ready()>`), or the core's own once
    /// the transport is gone (`outer` None); it runs the core's Rust code
    /// directly either way (`NativeCall`).
    pub(crate) fn watch(
        slf: &Bound<'_, Self>,
        event_loop: &Bound<'_, LoopBase>,
        fd: i32,
        slot: Slot,
        outer: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let py = slf.py();
        let (name, run): (_, NativeFn) = match slot {
            Slot::Reader => (intern!(py, "_read_ready"), Self::read_ready_native),
            Slot::Writer => (intern!(py, "_write_ready"), Self::write_ready_native),
        };
        let callback = match outer {
            Some(outer) => outer.into_bound(py).getattr(name)?,
            None => slf.getattr(name)?,
        };
        let native = NativeCall {
            target: slf.clone().into_any().unbind(),
            run,
        };
        LoopBase::watch_fd(event_loop, fd, slot, callback, native)?;
        Ok(())
    }

    /// `_read_ready` as the reader handle runs it (`NativeCall`).
    fn read_ready_native(target: &Bound<'_, PyAny>) -> PyResult<()> {
        Self::read_ready(target.cast::<StreamCore>()?)
    }

    /// The loop's reader callback: one read, handed to the protocol.
    fn read_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        // One lock, and only the two references a read needs (this runs
        // once per read; `parts()` would also clone the loop). Bound clones:
        // dropping a Py first checks a thread-local.
        let (fd, buffered, protocol, outer) = {
            let st = slf.get().state.lock();
            if st.conn_lost > 0 || st.event_loop.is_none() {
                return Ok(());
            }
            let (Some(protocol), Some(outer)) = (&st.protocol, &st.outer) else {
                return Ok(());
            };
            (
                st.fd,
                st.buffered,
                protocol.bind(py).clone(),
                outer.bind(py).clone(),
            )
        };
        if buffered {
            Self::read_into_protocol(slf, fd, &protocol, &outer)
        } else {
            Self::read_data(slf, fd, &protocol, &outer)
        }
    }

    /// `data_received` flavour: hand over a `bytes` of exactly what arrived
    /// (received into the `bytes` an earlier read handed over if the
    /// protocol let go of it, else copied from the thread's buffer or, when
    /// reads are large, received straight into a new one: see `recv.rs`).
    fn read_data(
        slf: &Bound<'_, Self>,
        fd: i32,
        protocol: &Bound<'_, PyAny>,
        outer: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let read = recv_reusing(py, fd);
        match read {
            Ok(Received::Data((data, capacity))) => {
                let called = protocol.call_method1(intern!(py, "data_received"), (&data,));
                // Kept for the next read if the protocol let go of it.
                offer_spare(data, capacity);
                if let Err(err) = called {
                    Self::fatal_error(
                        py,
                        outer,
                        err,
                        "Fatal error: protocol.data_received() call failed.",
                    )?;
                }
                Ok(())
            }
            Ok(Received::Eof) => Self::on_eof(slf, protocol, outer),
            Ok(Received::WouldBlock) => Ok(()),
            Err(err) => Self::fatal_error(py, outer, err, "Fatal read error on socket transport"),
        }
    }

    /// `BufferedProtocol` flavour: read straight into the protocol's buffer.
    fn read_into_protocol(
        slf: &Bound<'_, Self>,
        fd: i32,
        protocol: &Bound<'_, PyAny>,
        outer: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let buf = protocol
            .call_method1(intern!(py, "get_buffer"), (-1,))
            .and_then(|buf| {
                if buf.len()? == 0 {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "get_buffer() returned an empty buffer",
                    ));
                }
                Ok(buf)
            });
        let buf = match buf {
            Ok(buf) => buf,
            Err(err) => {
                return Self::fatal_error(
                    py,
                    outer,
                    err,
                    "Fatal error: protocol.get_buffer() call failed.",
                );
            }
        };
        let outcome = BufferView::new(&buf, true)
            .and_then(|mut view| recv_into(fd, view.as_mut_ptr(), view.len()).map_err(os_error));
        match outcome {
            Ok(Received::Data(n)) => {
                if let Err(err) = protocol.call_method1(intern!(py, "buffer_updated"), (n,)) {
                    Self::fatal_error(
                        py,
                        outer,
                        err,
                        "Fatal error: protocol.buffer_updated() call failed.",
                    )?;
                }
                Ok(())
            }
            Ok(Received::Eof) => Self::on_eof(slf, protocol, outer),
            Ok(Received::WouldBlock) => Ok(()),
            Err(err) => Self::fatal_error(py, outer, err, "Fatal read error on socket transport"),
        }
    }

    /// The peer closed its side: the protocol decides whether we stay
    /// half-open (`eof_received()` true) or close.
    fn on_eof(
        slf: &Bound<'_, Self>,
        protocol: &Bound<'_, PyAny>,
        outer: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let (fd, event_loop) = {
            let st = slf.get().state.lock();
            (st.fd, st.event_loop.as_ref().map(|l| l.clone_ref(py)))
        };
        let Some(event_loop) = event_loop else {
            return Ok(());
        };
        if event_loop.get().is_debug() {
            outer.call_method1(intern!(py, "_debug_log"), ("%r received EOF",))?;
        }
        let keep_open = match protocol.call_method0(intern!(py, "eof_received")) {
            Ok(keep_open) => keep_open,
            Err(err) => {
                return Self::fatal_error(
                    py,
                    outer,
                    err,
                    "Fatal error: protocol.eof_received() call failed.",
                );
            }
        };
        if keep_open.is_truthy()? {
            // Half-open: we may still write, but there is nothing to read.
            LoopBase::unwatch_fd(event_loop.bind(py), fd, Slot::Reader)?;
            Ok(())
        } else {
            Self::close_core(slf)
        }
    }
}

#[pymethods]
impl StreamCore {
    /// Wraps `sock` for `outer`, talking to `protocol` on `event_loop`.
    #[new]
    fn new(
        event_loop: &Bound<'_, PyAny>,
        outer: Bound<'_, PyAny>,
        sock: Bound<'_, PyAny>,
        protocol: Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let py = event_loop.py();
        let event_loop = event_loop.cast::<LoopBase>()?.clone().unbind();
        let fd: i32 = sock.call_method0(intern!(py, "fileno"))?.extract()?;
        let buffered = protocol.is_instance(buffered_protocol_type(py)?)?;
        Ok(StreamCore {
            state: Mutex::new(StreamState {
                fd,
                event_loop: Some(event_loop),
                outer: Some(outer.unbind()),
                sock: Some(sock.unbind()),
                protocol: Some(protocol.unbind()),
                buffered,
                protocol_connected: true,
                buffer: WriteBuffer::default(),
                conn_lost: 0,
                closing: false,
                paused: false,
                eof: false,
                protocol_paused: false,
                high: DEFAULT_HIGH_WATER,
                low: DEFAULT_HIGH_WATER / 4,
                empty_waiter: None,
            }),
        })
    }

    /// The loop's reader callback: one read, handed to the protocol (the
    /// reader handle calls `read_ready` directly; this is for others).
    fn _read_ready(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::read_ready(slf)
    }

    /// Starts reading unless paused or closing (scheduled by the transport
    /// right after `connection_made`).
    fn _start_reading(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::start_reading(slf)
    }

    /// Replaces the protocol.
    fn set_protocol(&self, protocol: &Bound<'_, PyAny>) -> PyResult<()> {
        let buffered = protocol.is_instance(buffered_protocol_type(protocol.py())?)?;
        let old = {
            let mut st = self.state.lock();
            st.buffered = buffered;
            st.protocol_connected = true;
            st.protocol.replace(protocol.clone().unbind())
        };
        drop(old);
        Ok(())
    }

    /// The current protocol (None once the connection is lost).
    fn get_protocol(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state.lock().protocol.as_ref().map(|p| p.clone_ref(py))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // try_lock: the collector runs on the thread that may hold the lock
        // (never across Python code, so never during a collection, but a
        // missed visit only keeps objects alive, which is safe).
        let Some(st) = self.state.try_lock() else {
            return Ok(());
        };
        if let Some(l) = &st.event_loop {
            visit.call(l)?;
        }
        for obj in [&st.outer, &st.sock, &st.protocol, &st.empty_waiter]
            .into_iter()
            .flatten()
        {
            visit.call(obj)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        let taken = {
            let mut st = self.state.lock();
            (
                st.event_loop.take(),
                st.outer.take(),
                st.sock.take(),
                st.protocol.take(),
                st.empty_waiter.take(),
            )
        };
        drop(taken);
    }
}
