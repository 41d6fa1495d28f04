//! [`Region`]: a byte range of a file or disk image, read as if it were the whole of it.

use std::io::{self, Read, Seek, SeekFrom};

/// The bytes `[offset, offset + len)` of `inner`, seen as a stream of `len` bytes: a partition
/// of a disk image, for example. Reads stop at the end of the region.
#[derive(Debug)]
pub struct Region<T> {
    inner: T,
    offset: u64,
    len: u64,
    pos: u64,
}

impl<T: Seek> Region<T> {
    /// A region of `len` bytes at `offset` of `inner`, positioned at its start.
    pub fn new(mut inner: T, offset: u64, len: u64) -> io::Result<Self> {
        inner.seek(SeekFrom::Start(offset))?;
        Ok(Region {
            inner,
            offset,
            len,
            pos: 0,
        })
    }

    /// The region's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Gives back the inner reader.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: Read> Read for Region<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let max = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if max == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..max])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<T: Seek> Seek for Region<T> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before region start"))?;
        self.inner.seek(SeekFrom::Start(self.offset + target))?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn reads_only_its_range_and_seeks_within_it() {
        let bytes: Vec<u8> = (0..100).collect();
        let mut region = Region::new(Cursor::new(bytes), 10, 20).unwrap();
        let mut all = Vec::new();
        region.read_to_end(&mut all).unwrap();
        assert_eq!(all, (10..30).collect::<Vec<u8>>());
        region.seek(SeekFrom::End(-5)).unwrap();
        let mut tail = Vec::new();
        region.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, vec![25, 26, 27, 28, 29]);
        assert!(region.seek(SeekFrom::Current(-100)).is_err());
    }
}
