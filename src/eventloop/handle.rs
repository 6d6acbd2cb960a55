//! `Handle` and `TimerHandle`: what `call_soon`/`call_later` return, and
//! what the ready queue and the timer heap hold.
//!
//! A handle owns its callback and arguments until it is cancelled (asyncio
//! drops them then, to break reference cycles) and runs them inside its
//! `contextvars.Context`. Exceptions other than `SystemExit` and
//! `KeyboardInterrupt` go to the loop's exception handler; those two
//! propagate out of the loop's `run_*` call.

use super::callback::{CallArgs, Callback, NativeCall};
use super::python::{
    call_in_context, copy_current_context, is_exit_exception, is_real_context, run_in_real_context,
    support,
};
use super::LoopBase;
use crate::core::timer_heap::Cancellable;
use parking_lot::Mutex;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::PyTypeInfo;
use pyo3::{ffi, PyTraverseError};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a run reads and what cancelling and reuse change, under one lock.
struct HandleState {
    /// Callback and arguments; `None` once cancelled, and while the handle
    /// waits in the loop's pool of spare handles.
    callback: Option<Callback>,
    /// The `contextvars.Context` the callback runs in (None while spare).
    context: Py<PyAny>,
    /// True while `context` is a copy this handle made and keeps hidden
    /// from the cycle collector (see `hide_from_collector`).
    context_hidden: bool,
}

impl HandleState {
    /// The state for `func(*args)` in `context`, or in a copy of the
    /// current context when `context` is None. (Inlined: built in place,
    /// it saves copying the state around on every `call_later`.)
    #[inline(always)]
    fn new(
        py: Python<'_>,
        func: Bound<'_, PyAny>,
        args: CallArgs,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<HandleState> {
        // Nothing may fail between hiding the copy and the state owning it:
        // dropping a hidden context would deallocate it untracked.
        let (context, context_hidden) = match context {
            Some(ctx) => (ctx.unbind(), false),
            None => {
                let copy = copy_current_context(py)?;
                let hidden = hide_from_collector(&copy);
                (copy, hidden)
            }
        };
        Ok(HandleState {
            callback: Some(Callback {
                func: func.unbind(),
                args,
                native: None,
            }),
            context,
            context_hidden,
        })
    }

    /// Gives the context back to the cycle collector if it was hidden.
    fn reveal_context(&mut self) {
        if std::mem::take(&mut self.context_hidden) {
            let ctx = self.context.as_ptr();
            // SAFETY: we are attached (every caller runs inside a pymethod,
            // the loop's iteration or the handle's tp_dealloc) and hold a
            // reference to `ctx`. Tracking an already tracked object is a
            // fatal error, hence the check, even though only this handle
            // could reach the copy.
            unsafe {
                if ffi::PyObject_GC_IsTracked(ctx) == 0 {
                    ffi::PyObject_GC_Track(ctx.cast());
                }
            }
        }
    }
}

/// A scheduled callback (asyncio's `Handle`).
#[pyclass(subclass, frozen, weakref, freelist = 1024, module = "ferroloop")]
pub struct Handle {
    /// Callback, arguments and context.
    state: Mutex<HandleState>,
    /// Set by `cancel()`; a cancelled handle never runs.
    cancelled: AtomicBool,
    /// The loop that scheduled it (the Python `ferroloop.Loop` object).
    loop_obj: Py<PyAny>,
    /// Where the handle was created, captured in debug mode only.
    source_traceback: Option<Py<PyAny>>,
    /// In debug mode, the repr taken at cancellation (before the callback is
    /// dropped), so the repr still names the callback.
    cancelled_repr: Mutex<Option<Py<PyAny>>>,
}

impl Handle {
    /// Builds a handle for `func(*args)` on `loop_`, copying the current
    /// context when `context` is None.
    pub(crate) fn build(
        loop_: &Bound<'_, LoopBase>,
        func: Bound<'_, PyAny>,
        args: Bound<'_, PyTuple>,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Handle> {
        Self::build_with(loop_, func, CallArgs::from_tuple(args), context)
    }

    /// `build` with arguments in any of their stored forms.
    #[inline(always)]
    pub(crate) fn build_with(
        loop_: &Bound<'_, LoopBase>,
        func: Bound<'_, PyAny>,
        args: CallArgs,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Handle> {
        let py = loop_.py();
        let source_traceback = if loop_.get().is_debug() {
            Some(
                support(py)?
                    .call_method0(intern!(py, "extract_stack"))?
                    .unbind(),
            )
        } else {
            None
        };
        Ok(Handle {
            state: Mutex::new(HandleState::new(py, func, args, context)?),
            cancelled: AtomicBool::new(false),
            loop_obj: loop_.clone().into_any().unbind(),
            source_traceback,
            cancelled_repr: Mutex::new(None),
        })
    }

    /// `build` for a callback without arguments that the loop can also run
    /// in Rust (`NativeCall`, which `run` prefers); `func` is what reprs
    /// and `_callback` show, and what a stand-in context's `run` is given.
    pub(crate) fn build_native(
        loop_: &Bound<'_, LoopBase>,
        func: Bound<'_, PyAny>,
        native: NativeCall,
    ) -> PyResult<Handle> {
        let mut handle = Self::build_with(loop_, func, CallArgs::Empty, None)?;
        if let Some(callback) = handle.state.get_mut().callback.as_mut() {
            callback.native = Some(native);
        }
        Ok(handle)
    }

    /// For the loop's `__traverse__`: reports what `handle` references as
    /// if the loop held it directly, when the loop is the handle's only
    /// owner. Handles are not tracked by the cycle collector themselves
    /// (tracking each one costs ~25% on callback-heavy code), so this is how
    /// cycles through queued callbacks (loop -> handle -> future -> loop)
    /// stay collectable. A handle also referenced elsewhere is skipped: its
    /// contents stay alive, which is safe.
    pub(crate) fn visit_if_owned(
        handle: &Py<Handle>,
        visit: &PyVisit<'_>,
    ) -> Result<(), PyTraverseError> {
        // SAFETY: `handle` is a live reference held by the loop, so reading
        // its reference count is valid (the collector stops the world).
        if unsafe { ffi::Py_REFCNT(handle.as_ptr()) } != 1 {
            return Ok(());
        }
        let this = handle.get();
        if let Some(state) = this.state.try_lock() {
            if let Some(cb) = state.callback.as_ref() {
                visit.call(&cb.func)?;
                cb.args.visit(visit)?;
                visit.call(cb.native.as_ref().map(|n| &n.target))?;
            }
            visit.call(&state.context)?;
        }
        visit.call(&this.loop_obj)?;
        visit.call(&this.source_traceback)?;
        if let Some(repr) = this.cancelled_repr.try_lock() {
            visit.call(&*repr)?;
        }
        Ok(())
    }

    /// The context, for code other than the handle: from now on others may
    /// hold it, so the collector must see it again.
    fn shared_context(&self, py: Python<'_>) -> Py<PyAny> {
        let mut state = self.state.lock();
        state.reveal_context();
        state.context.clone_ref(py)
    }

    /// Empties a handle that has just run so that the loop can reuse it for
    /// a later `call_soon`, if nothing but the caller's reference can reach
    /// it; returns None (and the handle is freed as usual) otherwise.
    ///
    /// Why: allocating a handle through pyo3 (`object_new`, the freelist's
    /// lock, initialising the layout, untracking) and freeing it again
    /// (pyo3's dealloc trampoline) cost ~450 instructions per callback;
    /// refilling a spare one costs a lock. Only plain `Handle`s made in
    /// normal mode qualify: not timers, not debug-mode handles (their
    /// creation traceback is fixed), not cancelled ones.
    pub(crate) fn recycle(handle: Bound<'_, Handle>) -> Option<Py<Handle>> {
        let py = handle.py();
        let this = handle.get();
        let obj = handle.as_ptr();
        // SAFETY: `obj` is live (we hold `handle`). A reference count of 1 is
        // our own reference; handles are not tracked by the cycle collector,
        // so `gc.get_objects()`/`get_referrers()` cannot find it either, and
        // an empty weak reference list means no weakref can revive it.
        // Hence nothing else can reach it while we reset and keep it.
        let unreachable = unsafe {
            let ty = ffi::Py_TYPE(obj);
            ptr::eq(ty, Handle::type_object_raw(py))
                && ffi::Py_REFCNT(obj) == 1
                && !has_weakrefs(obj, ty)
        };
        if !unreachable || this.is_cancelled() || this.source_traceback.is_some() {
            return None;
        }
        let (callback, context) = {
            let mut state = this.state.lock();
            state.reveal_context();
            (
                state.callback.take(),
                std::mem::replace(&mut state.context, py.None()),
            )
        };
        // Dropped outside the lock: a drop may run arbitrary Python code
        // (which cannot reach this handle, see above). As Bound values,
        // which skip the attached-thread check a Py drop makes.
        drop(context.into_bound(py));
        if let Some(callback) = callback {
            callback.release(py);
        }
        Some(handle.unbind())
    }

    /// Puts `func(*args)` into a handle `recycle` emptied, as `build_with`
    /// would have made it.
    pub(crate) fn refill(
        handle: &Py<Handle>,
        func: Bound<'_, PyAny>,
        args: CallArgs,
        context: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = func.py();
        let fresh = HandleState::new(py, func, args, context)?;
        let old = std::mem::replace(&mut *handle.get().state.lock(), fresh);
        // Empty (no callback, context None): dropping it runs no code. As a
        // Bound: `call_soon` runs outside pyo3's trampolines, where a Py drop
        // could not tell that the thread is attached and would defer it.
        drop(old.context.into_bound(py));
        Ok(())
    }

    /// True once cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Runs the callback. Returns an error only for `SystemExit` and
    /// `KeyboardInterrupt` (from the callback or from the exception handler);
    /// every other exception is reported to the loop's exception handler.
    pub(crate) fn run(slf: &Bound<'_, Handle>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        // Bound clones: dropping a Bound decrefs directly, without the
        // attached-thread check a Py drop makes.
        let (func, args, native, context) = {
            let state = this.state.lock();
            match &state.callback {
                Some(cb) => (
                    cb.func.bind(py).clone(),
                    cb.args.bind(py),
                    cb.native
                        .as_ref()
                        .map(|n| (n.run, n.target.bind(py).clone())),
                    state.context.bind(py).clone(),
                ),
                None => return Ok(()),
            }
        };
        let outcome = match native {
            Some((run, target)) if is_real_context(&context) => {
                run_in_real_context(&context, || run(&target))
            }
            _ => call_in_context(&context, &func, &args).map(drop),
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(err) if is_exit_exception(py, &err) => Err(err),
            Err(err) => {
                let exc = err.into_value(py);
                this.loop_obj
                    .bind(py)
                    .call_method1(intern!(py, "_report_callback_exception"), (slf, exc))
                    .map(drop)
            }
        }
    }

    /// Marks the handle cancelled and drops its callback. Returns true when
    /// this call did the cancelling (false if it was already cancelled).
    pub(crate) fn cancel_once(slf: &Bound<'_, Handle>) -> PyResult<bool> {
        let this = slf.get();
        if this.cancelled.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        let loop_is_debug = this
            .loop_obj
            .bind(slf.py())
            .cast::<LoopBase>()
            .map(|l| l.get().is_debug());
        if loop_is_debug.unwrap_or(false) {
            let repr = slf.repr()?.into_any().unbind();
            *this.cancelled_repr.lock() = Some(repr);
        }
        // Dropped outside the lock: a drop may run arbitrary Python code.
        let callback = this.state.lock().callback.take();
        drop(callback);
        Ok(true)
    }
}

#[pymethods]
impl Handle {
    /// Cancels the callback; it will not run. Safe to call more than once.
    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::cancel_once(slf).map(drop)
    }

    /// True if the handle was cancelled.
    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    /// The `contextvars.Context` the callback runs in.
    fn get_context(&self, py: Python<'_>) -> Py<PyAny> {
        self.shared_context(py)
    }

    /// Runs the callback now (asyncio's private `Handle._run`, used by the
    /// debug-mode runner).
    fn _run(slf: &Bound<'_, Self>) -> PyResult<()> {
        Self::run(slf)
    }

    #[getter]
    fn _callback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.state
            .lock()
            .callback
            .as_ref()
            .map(|cb| cb.func.clone_ref(py))
    }

    #[getter]
    fn _args(&self, py: Python<'_>) -> PyResult<Option<Py<PyTuple>>> {
        self.state
            .lock()
            .callback
            .as_ref()
            .map(|cb| cb.args.to_tuple(py))
            .transpose()
    }

    #[getter]
    fn _cancelled(&self) -> bool {
        self.is_cancelled()
    }

    #[getter]
    fn _context(&self, py: Python<'_>) -> Py<PyAny> {
        self.shared_context(py)
    }

    #[getter]
    fn _loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.loop_obj.clone_ref(py)
    }

    #[getter]
    fn _source_traceback(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.source_traceback.as_ref().map(|t| t.clone_ref(py))
    }

    #[getter]
    fn _repr(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.cancelled_repr.lock().as_ref().map(|r| r.clone_ref(py))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        Ok(support(py)?
            .call_method1(intern!(py, "handle_repr"), (slf,))?
            .unbind())
    }
}

/// Takes a context copy the handle just made out of the cycle collector's
/// lists. Every `call_soon` copies the current context (asyncio's rule), and
/// with many callbacks queued those copies dominate the collector's work
/// although, until the handle shares it, nothing but the handle can reach
/// its copy: no cycle can pass through it. The handle re-tracks the copy
/// before anyone else can get it and before releasing it (`Drop`), because
/// a context must be tracked when it is deallocated.
/// Returns whether it untracked the copy.
fn hide_from_collector(copy: &Py<PyAny>) -> bool {
    // SAFETY: `copy` is a Context created by PyContext_CopyCurrent (a GC
    // type, tracked at creation) and not yet shared; we are attached.
    unsafe {
        if ffi::PyObject_GC_IsTracked(copy.as_ptr()) == 1 {
            ffi::PyObject_GC_UnTrack(copy.as_ptr().cast());
            return true;
        }
    }
    false
}

/// True if weak references to `obj` (of type `ty`) exist.
///
/// # Safety
/// `obj` must be a live object of type `ty`, and we must be attached.
unsafe fn has_weakrefs(obj: *mut ffi::PyObject, ty: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: `ty` is a live type object (the caller's contract); its
    // `tp_weaklistoffset`, when not zero, is the offset of the weak
    // reference list pointer inside instances (a plain offset for classes
    // defined in C and by pyo3, never the "managed" negative form).
    unsafe {
        let offset = (*ty).tp_weaklistoffset;
        if offset <= 0 {
            return offset != 0;
        }
        !(*obj.cast::<u8>().offset(offset).cast::<*mut ffi::PyObject>()).is_null()
    }
}

/// Allocates a handle object and takes it out of the cycle collector's
/// lists, as the loop's design assumes (see `Handle::visit_if_owned`).
///
/// pyo3 makes every pyclass a GC type. A handle taken from the type's
/// freelist comes back untracked, but one freshly allocated (the freelist is
/// empty whenever more than its 1,024 entries are alive, as with many queued
/// callbacks or pending timers) is tracked, and the collector then walks it
/// on every collection for nothing: a handle's `tp_traverse` reports only its
/// type, never its callback or context, so tracking it finds no cycle. With
/// tens of thousands of handles alive that walk was most of the cost of
/// `call_soon` and `call_later`.
pub(crate) fn new_untracked<T: pyo3::PyClass>(
    py: Python<'_>,
    init: impl Into<PyClassInitializer<T>>,
) -> PyResult<Py<T>> {
    let obj = Py::new(py, init)?;
    // SAFETY: `obj` is a live object we just created and nobody else holds
    // yet; we are attached. Untracking an object of a GC type is always
    // allowed (its tp_dealloc untracks again, which tolerates an untracked
    // object); the check avoids untracking twice.
    unsafe {
        if ffi::PyObject_GC_IsTracked(obj.as_ptr()) == 1 {
            ffi::PyObject_GC_UnTrack(obj.as_ptr().cast());
        }
    }
    Ok(obj)
}

impl Drop for Handle {
    fn drop(&mut self) {
        // A context is deallocated with an untrack that assumes it is
        // tracked, so it must be tracked again before our reference goes.
        self.state.get_mut().reveal_context();
    }
}

/// A callback scheduled for a point in time (asyncio's `TimerHandle`).
#[pyclass(extends = Handle, frozen, module = "ferroloop")]
pub struct TimerHandle {
    /// Deadline on the loop clock.
    when: f64,
    /// Still in the loop's timer heap (not yet fired, not cancelled).
    scheduled: AtomicBool,
    /// Mirror of the base handle's flag, readable without the interpreter
    /// (the timer heap checks it while compacting).
    cancelled: AtomicBool,
}

impl TimerHandle {
    /// Builds a timer handle at `when` around `base`.
    pub(crate) fn build(when: f64, base: Handle) -> PyClassInitializer<TimerHandle> {
        PyClassInitializer::from(base).add_subclass(TimerHandle {
            when,
            scheduled: AtomicBool::new(true),
            cancelled: AtomicBool::new(false),
        })
    }

    /// Called when the timer leaves the heap to run.
    pub(crate) fn mark_fired(&self) {
        self.scheduled.store(false, Ordering::Release);
    }
}

/// The base-class view of a timer handle, without the interpreter token
/// (the loop's `__traverse__` has none).
pub(crate) fn timer_as_handle(timer: &Py<TimerHandle>) -> &Py<Handle> {
    // SAFETY: `Py<T>` is a repr(transparent) pointer to the object, and a
    // TimerHandle object begins with its Handle base (pyo3 lays subclasses
    // out that way; `Bound::as_super` is the same pointer cast).
    unsafe { &*(timer as *const Py<TimerHandle>).cast::<Py<Handle>>() }
}

impl Cancellable for Py<TimerHandle> {
    fn is_cancelled(&self) -> bool {
        self.get().cancelled.load(Ordering::Acquire)
    }
}

#[pymethods]
impl TimerHandle {
    /// Cancels the timer; the loop's heap is told so it can compact.
    fn cancel(slf: &Bound<'_, Self>) -> PyResult<()> {
        let this = slf.get();
        if !Handle::cancel_once(slf.as_super())? {
            return Ok(());
        }
        this.cancelled.store(true, Ordering::Release);
        if this.scheduled.swap(false, Ordering::AcqRel) {
            let loop_obj = slf.as_super().get().loop_obj.bind(slf.py());
            if let Ok(loop_) = loop_obj.cast::<LoopBase>() {
                loop_.get().timer_cancelled();
            }
        }
        Ok(())
    }

    /// The deadline given to `call_at` (or computed by `call_later`).
    fn when(&self) -> f64 {
        self.when
    }

    #[getter]
    fn _when(&self) -> f64 {
        self.when
    }

    #[getter]
    fn _scheduled(&self) -> bool {
        self.scheduled.load(Ordering::Acquire)
    }
}
