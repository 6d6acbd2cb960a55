//! Argument parsing for raw methods (`raw.rs`) whose asyncio signature is
//! `def name(self, a, b, *args, k=None, ...)` or `def name(self, a, *, k=None)`:
//! required positional-or-keyword parameters, optionally `*args`, then
//! keyword-only parameters that default to None.
//!
//! Why our own: pyo3's parsing words a wrong call with the Rust class
//! (`LoopBase.call_at()`) and counts positional arguments without `self`;
//! asyncio's Python methods raise CPython's messages, checked in CPython's
//! order (keywords first, then too many positional arguments, then missing
//! ones). The usual call (positional arguments only) costs a few
//! comparisons and copies; everything else runs out of line.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The class asyncio defines the loop's methods in; CPython words the
/// TypeErrors with its name (`BaseEventLoop.call_at() missing ...`).
pub(crate) const LOOP_OWNER: &str = "BaseEventLoop";

/// A parameter that may be passed by keyword.
pub(crate) struct Param {
    /// Its name.
    name: &'static CStr,
    /// The first str object seen naming it as a keyword (Python code passes
    /// the interned string, always the same object): later calls recognise
    /// it by pointer. It holds a reference that is never released, so the
    /// address cannot be reused by another object.
    seen: AtomicPtr<ffi::PyObject>,
}

impl Param {
    /// A parameter called `name`.
    pub(crate) const fn new(name: &'static CStr) -> Self {
        Param {
            name,
            seen: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The name as text (ASCII, written in this crate).
    fn text(&self) -> &'static str {
        self.name.to_str().unwrap_or("?")
    }

    /// True if the keyword name `name` (a live str) names this parameter.
    fn is(&self, name: *mut ffi::PyObject) -> bool {
        if ptr::eq(name, self.seen.load(Ordering::Acquire)) {
            return true;
        }
        // SAFETY: `name` is a live str; this comparison never raises.
        if unsafe { ffi::PyUnicode_CompareWithASCIIString(name, self.name.as_ptr()) } != 0 {
            return false;
        }
        // SAFETY: `name` is live; the new reference is kept forever if
        // stored, released at once if another name was stored first.
        unsafe {
            ffi::Py_INCREF(name);
            if self
                .seen
                .compare_exchange(ptr::null_mut(), name, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                ffi::Py_DECREF(name);
            }
        }
        true
    }
}

/// The signature of an asyncio method after `self`: `P` required
/// positional-or-keyword parameters, `*args` if `var_args`, then `K`
/// keyword-only parameters defaulting to None. Adding a keyword (3.14's
/// `eager_start`) is one more entry in `keyword_only`.
pub(crate) struct Signature<const P: usize, const K: usize> {
    /// The stock class that defines the method (`LOOP_OWNER` for the
    /// loop's), which the TypeErrors name.
    pub(crate) owner: &'static str,
    /// The method's name.
    pub(crate) method: &'static str,
    /// The required positional-or-keyword parameters, in order.
    pub(crate) positional: [Param; P],
    /// Whether extra positional arguments go to `*args`.
    pub(crate) var_args: bool,
    /// The keyword-only parameters (default None), in order.
    pub(crate) keyword_only: [Param; K],
}

/// Arguments as a `Signature` binds them; every pointer is borrowed from
/// the call (live while the method runs).
pub(crate) struct Parsed<'a, const P: usize, const K: usize> {
    /// The required parameters' values, in order (never NULL).
    pub(crate) positional: [*mut ffi::PyObject; P],
    /// `*args` (empty without `var_args`).
    pub(crate) var_args: &'a [*mut ffi::PyObject],
    /// The keyword-only parameters' values; NULL when not passed.
    pub(crate) keyword_only: [*mut ffi::PyObject; K],
}

impl<const P: usize, const K: usize> Signature<P, K> {
    /// Binds the arguments of a `METH_FASTCALL | METH_KEYWORDS` call as
    /// CPython binds them to the Python method, or returns CPython's
    /// TypeError for that call.
    ///
    /// # Safety
    /// The interpreter is attached; `args` holds `nargs` positional
    /// arguments followed by one value per name in `kwnames` (a tuple, or
    /// NULL), all live for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn bind<'a>(
        &self,
        args: *const *mut ffi::PyObject,
        nargs: ffi::Py_ssize_t,
        kwnames: *mut ffi::PyObject,
    ) -> PyResult<Parsed<'a, P, K>> {
        let nargs = nargs as usize;
        let fits = if self.var_args {
            nargs >= P
        } else {
            nargs == P
        };
        if kwnames.is_null() && fits {
            // SAFETY: `args` holds `nargs` live pointers (contract), and
            // `nargs >= P`.
            let given = unsafe { std::slice::from_raw_parts(args, nargs) };
            let (positional, var_args) = given.split_at(P);
            return Ok(Parsed {
                positional: positional.try_into().expect("split at P"),
                var_args,
                keyword_only: [ptr::null_mut(); K],
            });
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { self.bind_slowly(args, nargs, kwnames) }
    }

    /// `bind` with keywords or a wrong positional count.
    ///
    /// # Safety
    /// As for `bind` (`nargs` is the count as usize).
    #[cold]
    #[inline(never)]
    unsafe fn bind_slowly<'a>(
        &self,
        args: *const *mut ffi::PyObject,
        nargs: usize,
        kwnames: *mut ffi::PyObject,
    ) -> PyResult<Parsed<'a, P, K>> {
        // SAFETY: the interpreter is attached (contract).
        let py = unsafe { Python::assume_attached() };
        let nkw = if kwnames.is_null() {
            0
        } else {
            // SAFETY: a non-NULL `kwnames` is a tuple (vectorcall protocol).
            unsafe { ffi::PyTuple_GET_SIZE(kwnames) as usize }
        };
        let all: &'a [*mut ffi::PyObject] = if nargs + nkw == 0 {
            &[]
        } else {
            // SAFETY: `args` holds `nargs + nkw` live pointers (contract).
            unsafe { std::slice::from_raw_parts(args, nargs + nkw) }
        };
        let (given, keyword_values) = all.split_at(nargs);
        let mut bound = Parsed {
            positional: [ptr::null_mut(); P],
            var_args: &[],
            keyword_only: [ptr::null_mut(); K],
        };
        let taken = nargs.min(P);
        bound.positional[..taken].copy_from_slice(&given[..taken]);
        if self.var_args {
            bound.var_args = &given[taken..];
        }
        // Keywords first, as CPython checks them before counting.
        for (i, &value) in keyword_values.iter().enumerate() {
            // SAFETY: `i < nkw`, the size of the tuple; the item is live.
            let name = unsafe { ffi::PyTuple_GET_ITEM(kwnames, i as ffi::Py_ssize_t) };
            // SAFETY: `name` is a live object.
            if unsafe { ffi::PyUnicode_Check(name) } == 0 {
                return Err(self.error("keywords must be strings"));
            }
            let slot = if let Some(j) = self.positional.iter().position(|p| p.is(name)) {
                &mut bound.positional[j]
            } else if let Some(j) = self.keyword_only.iter().position(|p| p.is(name)) {
                &mut bound.keyword_only[j]
            } else {
                // SAFETY: `name` is a live str borrowed from the tuple.
                let name = unsafe { pyo3::Bound::from_borrowed_ptr(py, name) };
                return Err(self.unknown_keyword(py, &name));
            };
            if !slot.is_null() {
                return Err(self.multiple_values(py, name));
            }
            *slot = value;
        }
        if !self.var_args && nargs > P {
            return Err(self.too_many(nargs, &bound.keyword_only));
        }
        let missing: Vec<&str> = self
            .positional
            .iter()
            .zip(&bound.positional)
            .filter(|(_, value)| value.is_null())
            .map(|(param, _)| param.text())
            .collect();
        if !missing.is_empty() {
            return Err(self.error(&format!(
                "missing {} required positional argument{}: {}",
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                join_names(&missing)
            )));
        }
        Ok(bound)
    }

    /// The TypeError `<owner>.<method>() <problem>`.
    fn error(&self, problem: &str) -> PyErr {
        PyTypeError::new_err(format!("{}.{}() {problem}", self.owner, self.method))
    }

    /// A keyword given twice (`self=`, a positional parameter also passed
    /// by position, a name repeated in `kwnames`).
    fn multiple_values(&self, py: Python<'_>, name: *mut ffi::PyObject) -> PyErr {
        // SAFETY: `name` is a live str borrowed from the call.
        let name = unsafe { pyo3::Bound::from_borrowed_ptr(py, name) };
        self.error(&format!("got multiple values for argument '{name}'"))
    }

    /// A keyword that names no parameter, or `self` (which is bound
    /// already). From 3.13 on CPython adds a "Did you mean" suggestion.
    fn unknown_keyword(&self, py: Python<'_>, name: &pyo3::Bound<'_, PyAny>) -> PyErr {
        if name.eq("self").unwrap_or(false) {
            return self.error("got multiple values for argument 'self'");
        }
        let message = format!("got an unexpected keyword argument '{name}'");
        match self.suggestion(py, name) {
            Some(best) => self.error(&format!("{message}. Did you mean '{best}'?")),
            None => self.error(&message),
        }
    }

    /// The parameter name CPython 3.13+ suggests for the unknown keyword
    /// `name`: its own `_suggestions` module computes it (the function the
    /// interpreter calls for Python functions, over the names of `self`, the
    /// positional and the keyword-only parameters), so the choice is always
    /// the interpreter's. None before 3.13, or if that fails.
    fn suggestion(&self, py: Python<'_>, name: &pyo3::Bound<'_, PyAny>) -> Option<String> {
        if py.version_info() < (3, 13) {
            return None;
        }
        let candidates: Vec<&str> = std::iter::once("self")
            .chain(self.positional.iter().map(Param::text))
            .chain(self.keyword_only.iter().map(Param::text))
            .collect();
        let best = py
            .import("_suggestions")
            .and_then(|m| m.call_method1("_generate_suggestions", (candidates, name)))
            .ok()?;
        if best.is_none() {
            return None;
        }
        best.extract().ok()
    }

    /// Too many positional arguments for a signature without `*args`;
    /// CPython counts `self` and mentions keyword-only arguments given.
    fn too_many(&self, nargs: usize, keyword_only: &[*mut ffi::PyObject; K]) -> PyErr {
        let takes = P + 1;
        let given = nargs + 1;
        let keywords = keyword_only.iter().filter(|v| !v.is_null()).count();
        let also = match keywords {
            0 => String::new(),
            k => format!(
                " positional argument{} (and {k} keyword-only argument{})",
                if given == 1 { "" } else { "s" },
                if k == 1 { "" } else { "s" }
            ),
        };
        self.error(&format!(
            "takes {takes} positional argument{} but {given}{also} {} given",
            if takes == 1 { "" } else { "s" },
            if given == 1 && keywords == 0 {
                "was"
            } else {
                "were"
            }
        ))
    }
}

/// Names joined as CPython lists missing arguments: `'a'`, `'a' and 'b'`,
/// `'a', 'b', and 'c'`.
fn join_names(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [head @ .., last] => format!("{}, and {last}", head.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::join_names;

    #[test]
    fn names_join_as_cpython_lists_them() {
        assert_eq!(join_names(&["a"]), "'a'");
        assert_eq!(join_names(&["a", "b"]), "'a' and 'b'");
        assert_eq!(join_names(&["a", "b", "c"]), "'a', 'b', and 'c'");
    }
}
