//! Closing and pausing a `StreamCore`, the attributes asyncio code reads,
//! and the hand-over of the socket when the connection is lost.

use super::stream::StreamCore;
use crate::eventloop::{LoopBase, Slot};
use pyo3::intern;
use pyo3::prelude::*;

impl StreamCore {
    /// `close()`: stop reading; once the buffer is flushed (now, if it is
    /// empty) the connection is lost with no error.
    pub(crate) fn close_core(slf: &Bound<'_, Self>) -> PyResult<()> {
        let py = slf.py();
        let (flushed, fd, event_loop, outer) = {
            let mut st = slf.get().state.lock();
            if st.closing {
                return Ok(());
            }
            st.closing = true;
            let flushed = st.buffer.is_empty();
            if flushed {
                st.conn_lost += 1;
            }
            let Some(event_loop) = st.event_loop.as_ref().map(|l| l.clone_ref(py)) else {
                return Ok(());
            };
            let outer = st.outer.as_ref().map(|o| o.clone_ref(py));
            (flushed, st.fd, event_loop, outer)
        };
        LoopBase::unwatch_fd(event_loop.bind(py), fd, Slot::Reader)?;
        if flushed {
            LoopBase::unwatch_fd(event_loop.bind(py), fd, Slot::Writer)?;
            Self::schedule_connection_lost(py, &event_loop, outer, py.None())?;
        }
        Ok(())
    }

    /// Queues `outer._call_connection_lost(exc)`.
    fn schedule_connection_lost(
        py: Python<'_>,
        event_loop: &Py<LoopBase>,
        outer: Option<Py<PyAny>>,
        exc: Py<PyAny>,
    ) -> PyResult<()> {
        let Some(outer) = outer else {
            return Ok(());
        };
        let callback = outer
            .bind(py)
            .getattr(intern!(py, "_call_connection_lost"))?;
        event_loop
            .bind(py)
            .call_method1(intern!(py, "call_soon"), (callback, exc))?;
        Ok(())
    }
}

#[pymethods]
impl StreamCore {
    /// Closes after flushing what is buffered.
    fn close(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::close_core(slf)
    }

    /// Closes at once, dropping what is buffered; `connection_lost(exc)`
    /// follows on the next iteration.
    fn _force_close(slf: &Bound<'_, Self>, exc: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        let (had_buffer, was_closing, fd, event_loop, outer) = {
            let mut st = slf.get().state.lock();
            if st.conn_lost > 0 {
                return Ok(());
            }
            let had_buffer = !st.buffer.is_empty();
            st.buffer.clear();
            let was_closing = std::mem::replace(&mut st.closing, true);
            st.conn_lost += 1;
            let Some(event_loop) = st.event_loop.as_ref().map(|l| l.clone_ref(py)) else {
                return Ok(());
            };
            let outer = st.outer.as_ref().map(|o| o.clone_ref(py));
            (had_buffer, was_closing, st.fd, event_loop, outer)
        };
        if had_buffer {
            LoopBase::unwatch_fd(event_loop.bind(py), fd, Slot::Writer)?;
        }
        if !was_closing {
            LoopBase::unwatch_fd(event_loop.bind(py), fd, Slot::Reader)?;
        }
        Self::schedule_connection_lost(py, &event_loop, outer, exc)
    }

    /// Closes at once, dropping what is buffered.
    fn abort(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::_force_close(slf, slf.py().None())
    }

    /// True while reads are delivered.
    fn is_reading(&self) -> bool {
        let st = self.state.lock();
        !st.closing && !st.paused
    }

    /// Stops delivering reads until `resume_reading`; true if it changed
    /// anything (the Python side logs in debug mode).
    fn pause_reading(slf: &Bound<'_, Self>) -> PyResult<bool> {
        let py = slf.py();
        let (fd, event_loop) = {
            let mut st = slf.get().state.lock();
            if st.closing || st.paused {
                return Ok(false);
            }
            st.paused = true;
            (st.fd, st.event_loop.as_ref().map(|l| l.clone_ref(py)))
        };
        if let Some(event_loop) = event_loop {
            LoopBase::unwatch_fd(event_loop.bind(py), fd, Slot::Reader)?;
        }
        Ok(true)
    }

    /// Delivers reads again; true if it changed anything.
    fn resume_reading(slf: &Bound<'_, Self>) -> PyResult<bool> {
        {
            let mut st = slf.get().state.lock();
            if st.closing || !st.paused {
                return Ok(false);
            }
            st.paused = false;
        }
        Self::start_reading(slf)?;
        Ok(true)
    }

    /// Hands the socket over for closing when the connection is lost, and
    /// forgets the loop and protocol (asyncio's `_call_connection_lost`
    /// epilogue). Later writes are counted as writes after the loss.
    fn _take_socket(&self) -> Option<Py<PyAny>> {
        let (sock, protocol, event_loop) = {
            let mut st = self.state.lock();
            st.conn_lost = st.conn_lost.max(1);
            st.closing = true;
            (st.sock.take(), st.protocol.take(), st.event_loop.take())
        };
        drop((protocol, event_loop));
        sock
    }

    /// The socket object, None once closed.
    #[getter]
    fn _sock(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state.lock().sock.as_ref().map(|s| s.clone_ref(py))
    }

    /// The socket's fd.
    #[getter]
    fn _sock_fd(&self) -> i32 {
        self.state.lock().fd
    }

    /// The loop, None once the connection is lost.
    #[getter]
    fn _loop(&self, py: Python<'_>) -> Option<Py<LoopBase>> {
        self.state
            .lock()
            .event_loop
            .as_ref()
            .map(|l| l.clone_ref(py))
    }

    /// True once closing started (asyncio's `_closing`).
    #[getter]
    fn _closing(&self) -> bool {
        self.state.lock().closing
    }

    /// asyncio's `_conn_lost` counter.
    #[getter]
    fn _conn_lost(&self) -> u32 {
        self.state.lock().conn_lost
    }

    /// True while `pause_reading()` is in effect.
    #[getter]
    fn _paused(&self) -> bool {
        self.state.lock().paused
    }

    /// True once `write_eof()` was called.
    #[getter]
    fn _eof(&self) -> bool {
        self.state.lock().eof
    }

    /// True while the protocol is told to pause writing.
    #[getter]
    fn _protocol_paused(&self) -> bool {
        self.state.lock().protocol_paused
    }

    /// True while `connection_lost` is due to the protocol.
    #[getter]
    fn _protocol_connected(&self) -> bool {
        self.state.lock().protocol_connected
    }

    /// Whether the loop watches the fd for reading / writing (for reprs).
    fn _polling(&self) -> (bool, bool) {
        let st = self.state.lock();
        let Some(event_loop) = &st.event_loop else {
            return (false, false);
        };
        let fds = event_loop.get().fds.lock();
        match fds.get(&st.fd) {
            Some(w) => (w.reader.is_some(), w.writer.is_some()),
            None => (false, false),
        }
    }
}
