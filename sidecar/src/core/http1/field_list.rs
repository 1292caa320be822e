//! A parsed head's field list, recycled per worker thread: when a head is dropped its list
//! goes back to a small per-thread stack, and the next head parsed on that thread takes it,
//! so parsing a head allocates nothing once a worker is warm.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use super::Field;

/// Lists kept per thread: more than a worker's heads usually alive at once.
const KEEP: usize = 32;
/// A list that grew past this many fields (a rare, large head) is freed, not kept: at most
/// `KEEP` × 48 × 16 bytes (24 KiB) stay per thread.
const MAX_KEPT_CAPACITY: usize = 48;

thread_local! {
    static FREE: RefCell<Vec<Vec<Field>>> = const { RefCell::new(Vec::new()) };
}

/// A `Vec<Field>` whose storage is reused by the next head parsed on this thread.
#[derive(Debug, Default)]
pub(crate) struct FieldList(Vec<Field>);

impl FieldList {
    /// An empty list with room for `n` fields, reusing a dropped head's list when there is one.
    pub(crate) fn with_capacity(n: usize) -> Self {
        let mut v = FREE
            .try_with(|f| f.try_borrow_mut().ok().and_then(|mut f| f.pop()))
            .ok()
            .flatten()
            .unwrap_or_default();
        v.reserve(n);
        FieldList(v)
    }
}

impl Deref for FieldList {
    type Target = Vec<Field>;
    fn deref(&self) -> &Vec<Field> {
        &self.0
    }
}

impl DerefMut for FieldList {
    fn deref_mut(&mut self) -> &mut Vec<Field> {
        &mut self.0
    }
}

impl Drop for FieldList {
    fn drop(&mut self) {
        let mut v = std::mem::take(&mut self.0);
        if v.capacity() == 0 || v.capacity() > MAX_KEPT_CAPACITY {
            return;
        }
        v.clear();
        // `try_*`: a thread being torn down, or a drop during a pop, just frees the list.
        let _ = FREE.try_with(|f| {
            if let Ok(mut f) = f.try_borrow_mut() {
                if f.len() < KEEP {
                    f.push(v);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_list_is_reused_without_allocating() {
        drop(FieldList::with_capacity(8));
        let before = crate::alloc_count::this_thread();
        for _ in 0..100 {
            let l = FieldList::with_capacity(8);
            assert!(l.is_empty() && l.capacity() >= 8);
        }
        assert_eq!(crate::alloc_count::this_thread() - before, 0);
    }

    #[test]
    fn a_large_list_is_not_kept() {
        let big = FieldList::with_capacity(MAX_KEPT_CAPACITY * 4);
        let cap = big.capacity();
        drop(big);
        assert!(FieldList::with_capacity(1).capacity() < cap);
    }
}
