//! Read buffers that start on a page boundary.
//!
//! The kernel copies what `pread` returns from the page cache, whose pages start at offset 0,
//! into the caller's buffer. A 1 MiB `Vec` from the system allocator starts 16 bytes into a
//! page (the allocator's header in front of an mmapped block). On the x86 CPUs with fast short
//! `rep movsb` (AMD EPYC here) a copy whose destination is a few bytes past its source, modulo
//! 4 KiB, runs about five times slower: every load waits on the store just before it that
//! aliases it ("4K aliasing"). Reading 1 GiB back cost 0.55 s of system time into such a
//! buffer and 0.09 s into an aligned one (docs/benchmarks.md, "Read-back buffers"). Writes are
//! not affected (the destination, a page, is aligned).

use std::ops::{Deref, DerefMut};

const PAGE: usize = 4096;

/// `len` zeroed bytes starting on a 4 KiB boundary.
pub(crate) struct PageBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl PageBuf {
    pub(crate) fn new(len: usize) -> PageBuf {
        let raw = vec![0u8; len + PAGE];
        // The Vec is never grown, so its bytes never move.
        let start = (PAGE - raw.as_ptr() as usize % PAGE) % PAGE;
        PageBuf { raw, start, len }
    }
}

impl Deref for PageBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_on_a_page_and_holds_len_zeroed_bytes() {
        for len in [1, 4095, 4096, 1 << 20, (1 << 20) + 17] {
            let mut buf = PageBuf::new(len);
            assert_eq!(buf.as_ptr() as usize % PAGE, 0, "len {len}");
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|&b| b == 0));
            buf[len - 1] = 7;
            assert_eq!(buf[len - 1], 7);
        }
    }
}
