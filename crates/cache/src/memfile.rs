//! Cached bodies in memory files (`memfd`): a segment the cache keeps is copied once into a sealed
//! memory file and mapped read-only, so that handlers still see a `Bytes`, and the edge's HTTP/1
//! writer can hand the file's pages to the socket with `sendfile` instead of copying the body from
//! user memory on every response. Sealed against writes, the pages never change while the kernel
//! still sends them, even after the entry is evicted. Linux only; elsewhere, and when the kernel
//! refuses (descriptor limit), the body stays where it was. The system calls are `estuary-sys`'s
//! (`memfd::sealed`); this module decides what goes there and charges it.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

use estuary_budget::ByteBudget;

/// Bodies smaller than this stay on the heap: one gathered write sends them with their head, and a
/// descriptor each would cost more than it saves. At the default 512 MiB cache this bounds the
/// memory files to 4,096 descriptors.
pub(super) const MIN_BYTES: usize = 128 * 1024;

/// `body` moved into a memory file: the same bytes, mapped from it, with the file to send from and
/// a charge of its length against `budget`. `None` when the platform, the kernel or the budget says
/// no; the caller keeps `body` as it is.
pub(super) fn store(body: &Bytes, budget: &Arc<ByteBudget>) -> Option<(Bytes, Arc<File>)> {
    if body.len() < MIN_BYTES {
        return None;
    }
    let charge = budget.try_charge(body.len() as u64).ok()?;
    // The mapping keeps the charge: released when the last clone of the bytes is dropped.
    estuary_sys::memfd::sealed(body, charge)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::time::Duration;

    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_body_in_a_memory_file_reads_the_same_and_cannot_change() {
        let body = Bytes::from((0..300_000u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
        let budget = ByteBudget::new(1 << 20, Duration::ZERO);
        let (mapped, file) = store(&body, &budget).expect("memory files work on Linux");
        assert_eq!(mapped, body);
        let mut from_file = vec![0; 1000];
        file.read_exact_at(&mut from_file, 5000).unwrap();
        assert_eq!(&from_file[..], &body[5000..6000]);
        assert!(file.write_at(b"x", 0).is_err(), "sealed against writes");
        assert_eq!(budget.in_use(), body.len() as u64, "charged while it lives");
        drop((mapped, file));
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn small_bodies_and_a_full_budget_stay_where_they_are() {
        let budget = ByteBudget::new(1 << 20, Duration::ZERO);
        assert!(store(&Bytes::from(vec![1u8; MIN_BYTES - 1]), &budget).is_none());
        let full = ByteBudget::new(MIN_BYTES as u64 * 2, Duration::ZERO);
        let _held = full.try_charge(MIN_BYTES as u64 * 2).unwrap();
        assert!(store(&Bytes::from(vec![1u8; MIN_BYTES + 1]), &full).is_none());
    }
}
