//! Data parallelism for the bulk paths (parsing, canonical bytes), with
//! scoped std threads: no thread pool, no extra dependency.
//!
//! Results keep the input order, so errors are reported for the first
//! offending item exactly as a sequential loop would. This module must never
//! be used where order of side effects matters.

use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::thread;

/// Below this many items a single thread is faster than spawning.
const MIN_PARALLEL: usize = 2_048;

/// The threads to use: the available cores, at most 8, looked up once
/// (`available_parallelism` reads cgroup files on every call).
pub fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| thread::available_parallelism().map_or(1, NonZeroUsize::get).min(8))
}

/// Maps `f` over `items` on all cores, keeping the order.
pub fn map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    if threads() < 2 || items.len() < MIN_PARALLEL {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads());
    in_parts(items.chunks(chunk).collect(), |part| part.iter().map(&f).collect())
}

/// As [`map`], but `f` may change the items (each is one thread's alone).
pub fn map_mut<T: Send, U: Send>(items: &mut [T], f: impl Fn(&mut T) -> U + Sync) -> Vec<U> {
    if threads() < 2 || items.len() < MIN_PARALLEL {
        return items.iter_mut().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads());
    in_parts(items.chunks_mut(chunk).collect(), |part| part.iter_mut().map(&f).collect())
}

/// Runs `work` on each part on a thread of its own; the results in order.
fn in_parts<P: Send, U: Send>(parts: Vec<P>, work: impl Fn(P) -> Vec<U> + Sync) -> Vec<U> {
    thread::scope(|scope| {
        let handles: Vec<_> = parts.into_iter().map(|part| scope.spawn(|| work(part))).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order() {
        let items: Vec<u64> = (0..10_000).collect();
        assert_eq!(super::map(&items, |x| x * 2), items.iter().map(|x| x * 2).collect::<Vec<_>>());
        let mut changed = items.clone();
        assert_eq!(super::map_mut(&mut changed, |x| std::mem::replace(x, 0)), items);
        assert!(changed.iter().all(|x| *x == 0));
    }
}
