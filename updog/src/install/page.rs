//! Read buffers that start on a page boundary.
//!
//! The kernel copies what `pread` returns from the page cache, whose pages start on a page
//! boundary, into the caller's buffer. On x86 CPUs with fast short `rep movsb` (this VM's AMD
//! EPYC) such a copy into a buffer that starts a few bytes past a page boundary runs about five
//! times slower: each load aliases the store just before it ("4K aliasing"). A 1 MiB `Vec`
//! starts 16 bytes past a page when the allocator maps it on its own, and anywhere on a 16-byte
//! boundary when it comes from the heap. Reading 1 GiB back took 0.55–0.61 s of system time
//! into a buffer 8 to 24 bytes past a page, 0.07–0.10 s into one on a page or 32 bytes or more
//! past (docs/benchmarks.md, "Read-back buffers"). Writes are not affected.

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
