//! The small trait all disk code goes through, so tests can wrap it and count syncs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// A disk: bytes that can be read, written and seeked, plus a durability barrier.
///
/// Implemented for [`std::fs::File`] (image files and block devices) and for the in-memory
/// [`MemDisk`]; tests wrap it to record every write and sync and replay crashes.
pub trait Disk: Read + Write + Seek {
    /// Makes every write issued so far durable (`fdatasync` for a file or block device).
    fn sync(&mut self) -> io::Result<()>;
}

impl Disk for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl<D: Disk + ?Sized> Disk for &mut D {
    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }
}

/// Sector granularity of [`MemDisk`]'s storage.
const MEM_SECTOR: u64 = 512;

/// A sparse in-memory disk of a fixed length: unwritten sectors read as zeros.
///
/// Cheap to clone when little has been written, which makes it the disk of choice for
/// crash-replay and property tests. Writes past the end fail, as on a real disk. Two disks are
/// equal when their bytes are (the cursor position does not count).
#[derive(Debug, Clone)]
pub struct MemDisk {
    len: u64,
    pos: u64,
    sectors: BTreeMap<u64, Vec<u8>>,
}

impl MemDisk {
    /// An all-zero disk of `len` bytes.
    pub fn new(len: u64) -> MemDisk {
        MemDisk {
            len,
            pos: 0,
            sectors: BTreeMap::new(),
        }
    }

    /// The disk's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the disk has zero length.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `bytes` at `offset` without moving the cursor (used to replay crashes).
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let end = offset
            .checked_add(bytes.len() as u64)
            .filter(|end| *end <= self.len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "write past end of disk"))?;
        let mut at = offset;
        while at < end {
            let sector = at / MEM_SECTOR;
            let within = (at % MEM_SECTOR) as usize;
            let n = ((MEM_SECTOR as usize) - within).min((end - at) as usize);
            let data = self
                .sectors
                .entry(sector)
                .or_insert_with(|| vec![0; MEM_SECTOR as usize]);
            let from = (at - offset) as usize;
            data[within..within + n].copy_from_slice(&bytes[from..from + n]);
            at += n as u64;
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset` (zeros past the end) without moving the cursor.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let at = offset + done as u64;
            let within = (at % MEM_SECTOR) as usize;
            let n = ((MEM_SECTOR as usize) - within).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            match self.sectors.get(&(at / MEM_SECTOR)) {
                Some(sector) => out.copy_from_slice(&sector[within..within + n]),
                None => out.fill(0),
            }
            done += n;
        }
    }
}

impl PartialEq for MemDisk {
    fn eq(&self, other: &MemDisk) -> bool {
        self.len == other.len && self.sectors == other.sectors
    }
}

impl Eq for MemDisk {}

impl Read for MemDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.len.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        self.read_at(self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for MemDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_at(self.pos, buf)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for MemDisk {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before start of disk")
        })?;
        Ok(self.pos)
    }
}

impl Disk for MemDisk {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_disk_reads_back_what_was_written_across_sectors() {
        let mut disk = MemDisk::new(4096);
        disk.seek(SeekFrom::Start(500)).unwrap();
        disk.write_all(&[7; 30]).unwrap();
        let mut buf = [1; 40];
        disk.seek(SeekFrom::Start(495)).unwrap();
        disk.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..5], &[0; 5]);
        assert_eq!(&buf[5..35], &[7; 30]);
        assert_eq!(&buf[35..], &[0; 5]);
        assert!(disk.write_at(4090, &[1; 7]).is_err());
        disk.seek(SeekFrom::End(-2)).unwrap();
        let mut tail = [9; 4];
        assert_eq!(disk.read(&mut tail).unwrap(), 2);
    }
}
