//! Reusing the `bytes` a protocol's `data_received` let go of.
//!
//! Why: a transport read hands the protocol a new `bytes`, which the
//! protocol usually drops before returning (an echo server writes it out,
//! `StreamReader.feed_data` copies it into its `bytearray`). Above 512 bytes
//! CPython allocates a `bytes` with the C allocator: making one and freeing
//! it again cost ~550 instructions per read, a sixth of an echo request.
//!
//! So after `data_received` returns, the transport offers the object back
//! (`Spare::offer`): if nothing but the transport references it, the thread
//! keeps it, and its next transport read lands in it directly (`recv.rs`,
//! `Reader::recv_reusing`), which also saves copying out of the thread's
//! buffer. Nothing can tell: an object whose only reference we hold cannot
//! be reached by any other code (`bytes` are not tracked by the cycle
//! collector and take no weak references), so changing its contents and
//! length before handing it out again is as good as making a new one. This
//! is what CPython's own `_PyBytes_Resize` relies on.
//!
//! A reused object keeps its allocation: it is handed out for a read of `n`
//! bytes only if `n` is at least a quarter of its capacity, so a kept chunk
//! never holds more than four times its size (smaller reads are copied into
//! a `bytes` of their own, as before).
//!
//! The extension does not declare itself free-threading safe, so even a
//! free-threaded CPython runs it with the GIL, under which a reference
//! count of 1 proves that no other thread holds a reference.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A `bytes` only this thread references, with the size it was made with.
pub(crate) struct Spare {
    /// The object, or None.
    bytes: Option<Py<PyBytes>>,
    /// Bytes of storage it has (its length when it was made).
    capacity: usize,
}

/// A read of fewer than `capacity / MAX_WASTE` bytes does not use a spare
/// of that capacity.
const MAX_WASTE: usize = 4;

impl Spare {
    /// No spare (const, for thread-locals).
    pub(crate) const fn new() -> Self {
        Spare {
            bytes: None,
            capacity: 0,
        }
    }

    /// Takes the spare out, with its capacity.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<(Py<PyBytes>, usize)> {
        self.bytes.take().map(|b| (b, self.capacity))
    }

    /// Puts back a spare that `take` gave (unused).
    #[inline]
    pub(crate) fn put_back(&mut self, bytes: Py<PyBytes>, capacity: usize) {
        self.bytes = Some(bytes);
        self.capacity = capacity;
    }

    /// Keeps `bytes` (of `capacity` bytes of storage) for the next read if
    /// nothing else references it; otherwise drops our reference. Returns
    /// the spare it replaces, if any, for the caller to drop (freeing a
    /// `bytes` runs no Python code, but it is done outside our borrow).
    #[inline]
    pub(crate) fn offer(
        &mut self,
        bytes: Bound<'_, PyBytes>,
        capacity: usize,
    ) -> Option<Py<PyBytes>> {
        if capacity < 2 {
            return None;
        }
        // SAFETY: `bytes` is a live reference, so reading its count is
        // valid. With the GIL held, 1 means ours is the only one: see the
        // module comment.
        if unsafe { ffi::Py_REFCNT(bytes.as_ptr()) } != 1 {
            return None;
        }
        let old = self.bytes.replace(bytes.unbind());
        self.capacity = capacity;
        old
    }
}

/// True if a read of `n` bytes may be handed out in a spare of `capacity`.
#[inline]
pub(crate) fn fits(n: usize, capacity: usize) -> bool {
    n <= capacity && n.saturating_mul(MAX_WASTE) >= capacity
}

/// Where a spare's storage starts.
#[inline]
pub(crate) fn storage(bytes: &Py<PyBytes>) -> *mut u8 {
    // SAFETY: `bytes` is a live `bytes` (exact type, made by
    // PyBytes_FromStringAndSize); its storage lives as long as it does.
    unsafe { ffi::PyBytes_AS_STRING(bytes.as_ptr()) as *mut u8 }
}

/// Hands out a spare whose first `n` bytes a read has just filled: sets its
/// length to `n` (`n <= capacity`, checked by `fits`), restores the
/// trailing NUL every `bytes` has, and forgets any cached hash of its
/// previous contents.
#[inline]
pub(crate) fn finish<'py>(py: Python<'py>, bytes: Py<PyBytes>, n: usize) -> Bound<'py, PyBytes> {
    let obj = bytes.as_ptr();
    // SAFETY: only this thread references `obj` (it came from `Spare`, which
    // keeps objects whose only reference it holds, and we hold the GIL). A
    // `bytes` of capacity c has c + 1 bytes of storage, so writing the NUL
    // at `n <= c` stays inside it; `n <= c <= isize::MAX`. Shrinking
    // `ob_size` is what `_PyBytes_Resize` does in place; freeing ignores it.
    // The hash field is deprecated for reading by extensions but still
    // caches the hash on every supported version; -1 means "not computed".
    unsafe {
        *storage(&bytes).add(n) = 0;
        // Py_SET_SIZE, which pyo3 does not expose.
        (*obj.cast::<ffi::PyVarObject>()).ob_size = n as ffi::Py_ssize_t;
        #[allow(deprecated)]
        {
            (*obj.cast::<ffi::PyBytesObject>()).ob_shash = -1;
        }
    }
    bytes.into_bound(py)
}
