//! A handle's callback and its positional arguments, and how they are
//! called.
//!
//! Most callbacks take no argument (a task step) or one (a future's done
//! callback gets the future; `fut.set_result(x)`). Those are kept without a
//! tuple and called through vectorcall, which saves allocating and freeing
//! a tuple per callback and unpacking it again in `PyObject_Call`. Other
//! counts keep the tuple they came in.

use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3::{ffi, intern, PyTraverseError};
use std::ptr;

/// Positional arguments of a callback.
pub(crate) enum CallArgs {
    /// No arguments.
    Empty,
    /// Exactly one argument, kept without a tuple.
    One(Py<PyAny>),
    /// Any number, as the tuple the caller gave.
    Tuple(Py<PyTuple>),
}

/// The same, borrowed for one call (taken out of the handle's lock).
pub(crate) enum BoundArgs<'py> {
    /// No arguments.
    Empty,
    /// Exactly one argument.
    One(Bound<'py, PyAny>),
    /// Any number.
    Tuple(Bound<'py, PyTuple>),
}

/// A callable with its positional arguments.
pub(crate) struct Callback {
    /// The callable.
    pub(crate) func: Py<PyAny>,
    /// Its positional arguments.
    pub(crate) args: CallArgs,
    /// The same call in Rust, when the loop's own code is the callee (a
    /// transport's reader or writer): `func` then stays for reprs and
    /// `_callback`.
    pub(crate) native: Option<NativeCall>,
}

/// A callback the loop runs without going through Python's call protocol:
/// `run(target)`. A transport's reader runs once per read; calling its
/// bound method instead cost the vectorcall, pyo3's trampoline and the
/// receiver's type check, ~150 instructions.
pub(crate) struct NativeCall {
    /// The object the callback works on.
    pub(crate) target: Py<PyAny>,
    /// What the call does; exceptions are the callback's, as if `func()`
    /// had raised them.
    pub(crate) run: NativeFn,
}

/// The Rust function of a `NativeCall`, given its target.
pub(crate) type NativeFn = for<'py> fn(&Bound<'py, PyAny>) -> PyResult<()>;

impl Callback {
    /// Drops the callable and its arguments as Bound values (a Py drop
    /// first checks, through a thread-local, that the thread is attached).
    pub(crate) fn release(self, py: Python<'_>) {
        drop(self.func.into_bound(py));
        if let Some(native) = self.native {
            drop(native.target.into_bound(py));
        }
        match self.args {
            CallArgs::Empty => {}
            CallArgs::One(arg) => drop(arg.into_bound(py)),
            CallArgs::Tuple(args) => drop(args.into_bound(py)),
        }
    }
}

impl CallArgs {
    /// Arguments that arrived as a tuple (pyo3's `*args`). An empty tuple
    /// is not kept: the callback is then called through vectorcall with no
    /// arguments instead of `PyObject_Call(func, ())` (the transports'
    /// reader and writer callbacks take none, and run once per read).
    /// `Handle._args` still gives `()`, the same singleton.
    pub(crate) fn from_tuple(args: Bound<'_, PyTuple>) -> CallArgs {
        if args.is_empty() {
            CallArgs::Empty
        } else {
            CallArgs::Tuple(args.unbind())
        }
    }

    /// Arguments a raw method received in its vector (`call_soon`,
    /// `call_at`'s `*args`): none or one kept without a tuple.
    ///
    /// # Safety
    /// Every pointer in `args` is a live object (borrowed from the call).
    pub(crate) unsafe fn from_call(
        py: Python<'_>,
        args: &[*mut ffi::PyObject],
    ) -> PyResult<CallArgs> {
        // SAFETY: live objects (this function's contract).
        let arg = |p: *mut ffi::PyObject| unsafe { Borrowed::from_ptr(py, p) };
        Ok(match args {
            [] => CallArgs::Empty,
            [one] => CallArgs::One(arg(*one).to_owned().unbind()),
            many => CallArgs::Tuple(PyTuple::new(py, many.iter().map(|&p| arg(p)))?.unbind()),
        })
    }

    /// New references to the arguments, for a call made without the lock.
    pub(crate) fn bind<'py>(&self, py: Python<'py>) -> BoundArgs<'py> {
        match self {
            CallArgs::Empty => BoundArgs::Empty,
            CallArgs::One(arg) => BoundArgs::One(arg.bind(py).clone()),
            CallArgs::Tuple(args) => BoundArgs::Tuple(args.bind(py).clone()),
        }
    }

    /// The arguments as a tuple (asyncio's `Handle._args`, for reprs).
    pub(crate) fn to_tuple(&self, py: Python<'_>) -> PyResult<Py<PyTuple>> {
        match self {
            CallArgs::Empty => Ok(PyTuple::empty(py).unbind()),
            CallArgs::One(arg) => Ok(PyTuple::new(py, [arg.bind(py)])?.unbind()),
            CallArgs::Tuple(args) => Ok(args.clone_ref(py)),
        }
    }

    /// Reports the arguments to the cycle collector.
    pub(crate) fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            CallArgs::Empty => Ok(()),
            CallArgs::One(arg) => visit.call(arg),
            CallArgs::Tuple(args) => visit.call(args),
        }
    }
}

impl<'py> BoundArgs<'py> {
    /// `func(*args)`.
    pub(crate) fn call(&self, func: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = func.py();
        let result = match self {
            // SAFETY: `func` is a live object; a null args pointer with
            // nargs 0 is allowed when PY_VECTORCALL_ARGUMENTS_OFFSET is not
            // set (the callee never touches args).
            BoundArgs::Empty => unsafe {
                ffi::PyObject_Vectorcall(func.as_ptr(), ptr::null(), 0, ptr::null_mut())
            },
            BoundArgs::One(arg) => {
                // Slot 0 is scratch space the callee may overwrite
                // (PY_VECTORCALL_ARGUMENTS_OFFSET): a bound method puts its
                // `self` there instead of allocating a new argument array.
                let mut slots = [ptr::null_mut(), arg.as_ptr()];
                // SAFETY: `slots[1..]` holds one borrowed reference that
                // outlives the call (we hold `arg`); slot 0 is writable and
                // restored by the callee, as the flag requires.
                unsafe {
                    ffi::PyObject_Vectorcall(
                        func.as_ptr(),
                        slots.as_mut_ptr().add(1),
                        1 | ffi::PY_VECTORCALL_ARGUMENTS_OFFSET,
                        ptr::null_mut(),
                    )
                }
            }
            BoundArgs::Tuple(args) => return func.call1(args),
        };
        // SAFETY: the call returned a new reference, or NULL with an
        // exception set.
        unsafe { Bound::from_owned_ptr_or_err(py, result) }
    }

    /// `context.run(func, *args)`, for a context that is not a real
    /// `contextvars.Context` (its own `run` decides, as in asyncio).
    pub(crate) fn run_in(
        &self,
        context: &Bound<'py, PyAny>,
        func: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = func.py();
        let mut call_args = vec![func.clone()];
        match self {
            BoundArgs::Empty => {}
            BoundArgs::One(arg) => call_args.push(arg.clone()),
            BoundArgs::Tuple(args) => call_args.extend(args.iter()),
        }
        context.call_method1(intern!(py, "run"), PyTuple::new(py, call_args)?)
    }
}
