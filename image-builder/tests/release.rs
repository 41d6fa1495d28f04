//! Building a release with the real e2fsprogs and reading it back with ext4-view.

#![allow(clippy::unwrap_used)] // Helpers outside #[test] functions unwrap too.

mod common;

use image_builder::{Error, ImageRegion, build_release, read_boot_params, read_root_info};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::process::Command;

#[test]
fn a_release_reads_back_and_verifies() {
    let Some((dir, tree)) = common::scratch_tree() else {
        return;
    };
    let kernel = dir.path().join("kernel");
    fs::write(&kernel, vec![0xeeu8; 300_000]).unwrap();
    let mut spec = common::spec(&tree);
    spec.kernel = Some(kernel);
    let out = dir.path().join("out");
    let release = build_release(&spec, &out).unwrap();

    assert_eq!(release.root.size % (1 << 20), 0);
    assert_eq!(
        release.root.size,
        fs::metadata(&release.root.path).unwrap().len()
    );
    assert_eq!(release.hash.size, release.verity.hash_image_size());
    assert_eq!(release.verity.hash_start_block(), 1);
    assert_eq!(release.verity.data_size(), release.root.size);
    // Only the six images are left in the output directory (the scratch tree is gone).
    assert_eq!(fs::read_dir(&out).unwrap().count(), 6);

    // BOOT carries the parameters, and ROOT verifies against HASH with them.
    let boot = File::open(&release.boot.path).unwrap();
    let params = read_boot_params(ImageRegion::whole(boot).unwrap()).unwrap();
    assert_eq!(params, release.verity);
    let root = File::open(&release.root.path).unwrap();
    verity::verify(&params, &root, File::open(&release.hash.path).unwrap()).unwrap();

    // ROOT carries os-release and the trusted root.
    let info = read_root_info(ImageRegion::whole(root).unwrap()).unwrap();
    assert_eq!(info.os_release.version_id().to_string(), "1.2.3");
    assert_eq!(info.os_release.variant_id(), "dev");
    assert_eq!(info.os_release.get("ID"), Some("twinset"));
    assert_eq!(info.root_json, common::ROOT_JSON);

    // The tree's own files, modes, links and owners; the kernel in BOOT.
    let fs_root = ext4_view::Ext4::load_from_path(&release.root.path).unwrap();
    assert_eq!(fs_root.read_to_string("/etc/motd").unwrap(), "welcome\n");
    assert_eq!(
        fs_root.read("/usr/marker.bin").unwrap(),
        common::marker_content()
    );
    let hello = fs_root.metadata("/usr/bin/hello").unwrap();
    assert_eq!(hello.mode() & 0o777, 0o755);
    assert_eq!((hello.uid(), hello.gid()), (0, 0));
    assert_eq!(
        fs_root.read_link("/etc/hello").unwrap().to_str().unwrap(),
        "../usr/bin/hello"
    );
    let fs_boot = ext4_view::Ext4::load_from_path(&release.boot.path).unwrap();
    assert_eq!(fs_boot.read("/vmlinuz").unwrap(), vec![0xeeu8; 300_000]);
}

#[test]
fn lz4_copies_decompress_to_the_images() {
    let Some((dir, tree)) = common::scratch_tree() else {
        return;
    };
    let release = build_release(&common::spec(&tree), &dir.path().join("out")).unwrap();
    for image in [&release.root, &release.hash, &release.boot] {
        let raw = fs::read(&image.path).unwrap();
        let mut decoded = Vec::new();
        lz4_flex::frame::FrameDecoder::new(File::open(&image.lz4_path).unwrap())
            .read_to_end(&mut decoded)
            .unwrap();
        assert!(
            decoded == raw,
            "{} decodes differently",
            image.lz4_path.display()
        );
        assert_eq!(image.lz4_size, fs::metadata(&image.lz4_path).unwrap().len());
        assert!(image.lz4_size < image.size);
    }
    // An independent decoder: the lz4 CLI.
    let Some(lz4) = test_tools::require_tool("lz4") else {
        return;
    };
    let out = Command::new(lz4)
        .arg("-dc")
        .arg(&release.root.lz4_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == fs::read(&release.root.path).unwrap());
}

#[test]
fn builds_are_reproducible() {
    if !common::have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tree_a, tree_b) = (dir.path().join("a"), dir.path().join("b"));
    common::make_tree(&tree_a);
    common::make_tree(&tree_b);
    // Different source times, which mke2fs would copy.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    File::options()
        .write(true)
        .open(tree_b.join("etc/motd"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let a = build_release(&common::spec(&tree_a), &dir.path().join("out-a")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = build_release(&common::spec(&tree_b), &dir.path().join("out-b")).unwrap();
    assert_eq!(a.verity, b.verity);
    for (x, y) in [(&a.root, &b.root), (&a.hash, &b.hash), (&a.boot, &b.boot)] {
        for (p, q) in [(&x.path, &y.path), (&x.lz4_path, &y.lz4_path)] {
            assert!(
                fs::read(p).unwrap() == fs::read(q).unwrap(),
                "{} differs from {}",
                p.display(),
                q.display()
            );
        }
    }

    // A different version gives a different salt and image.
    let mut spec = common::spec(&tree_a);
    spec.version = semver::Version::new(1, 2, 4);
    let c = build_release(&spec, &dir.path().join("out-c")).unwrap();
    assert_ne!(c.verity.salt(), a.verity.salt());
    assert_ne!(c.verity.root_hash(), a.verity.root_hash());
}

#[test]
fn a_flipped_byte_in_a_file_fails_verification_naming_its_block() {
    let Some((dir, tree)) = common::scratch_tree() else {
        return;
    };
    let release = build_release(&common::spec(&tree), &dir.path().join("out")).unwrap();
    let mut root = fs::read(&release.root.path).unwrap();
    let marker = common::marker_content();
    let at = root
        .windows(64)
        .position(|w| w == &marker[..64])
        .expect("marker file's data in the image");
    let flip = at + 4096 + 100; // Inside the file's second data block.
    root[flip] ^= 0x01;
    let hash = File::open(&release.hash.path).unwrap();
    let err = verity::verify(&release.verity, &root[..], hash).unwrap_err();
    assert!(
        matches!(err, verity::Error::DataBlockMismatch { block, .. } if block == (flip / 4096) as u64),
        "{err}"
    );

    // The flipped file still reads back: only verification catches it.
    let path = dir.path().join("flipped.ext4");
    fs::write(&path, &root).unwrap();
    let fs_root = ext4_view::Ext4::load_from_path(&path).unwrap();
    assert_ne!(fs_root.read("/usr/marker.bin").unwrap(), marker);
}

#[test]
fn images_are_read_from_partitions_of_a_disk_image() {
    let Some((dir, tree)) = common::scratch_tree() else {
        return;
    };
    let release = build_release(&common::spec(&tree), &dir.path().join("out")).unwrap();
    // A disk: 1 MiB of junk, then BOOT, ROOT and HASH, each followed by junk.
    let disk_path = dir.path().join("disk.img");
    let mut disk = File::create(&disk_path).unwrap();
    let junk = vec![0xa5u8; 1 << 20];
    let mut offsets = Vec::new();
    let mut at = 0u64;
    disk.write_all(&junk).unwrap();
    at += junk.len() as u64;
    for image in [&release.boot, &release.root, &release.hash] {
        offsets.push((at, image.size));
        disk.write_all(&fs::read(&image.path).unwrap()).unwrap();
        disk.write_all(&junk).unwrap();
        at += image.size + junk.len() as u64;
    }
    drop(disk);
    let open = || File::open(&disk_path).unwrap();
    let [
        (boot_at, boot_len),
        (root_at, root_len),
        (hash_at, hash_len),
    ] = offsets[..]
    else {
        unreachable!()
    };
    let params = read_boot_params(ImageRegion::new(open(), boot_at, boot_len)).unwrap();
    let data = verity::Region::new(open(), root_at, root_len).unwrap();
    let hash = verity::Region::new(open(), hash_at, hash_len).unwrap();
    verity::verify(&params, data, hash).unwrap();
    let info = read_root_info(ImageRegion::new(open(), root_at, root_len)).unwrap();
    assert_eq!(info.os_release.variant_id(), "dev");
}

#[test]
fn size_limits_and_mkfs_failures_are_one_line_errors() {
    let Some((dir, tree)) = common::scratch_tree() else {
        return;
    };
    fs::write(tree.join("big"), vec![1u8; 3 << 20]).unwrap();

    let mut spec = common::spec(&tree);
    spec.limits.root = Some(4 << 20);
    let err = build_release(&spec, &dir.path().join("out")).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { image: "ROOT", .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("maximum of 4194304 bytes"),
        "{err}"
    );

    let mut spec = common::spec(&tree);
    spec.root_size = Some(1 << 20);
    let err = build_release(&spec, &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("root.ext4' with mkfs.ext4"), "{err}");
    assert!(!err.contains('\n'), "{err}");

    let mut tree_spec = common::spec(&tree);
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/os-release"), "ID=other\n").unwrap();
    tree_spec.root_size = None;
    let err = build_release(&tree_spec, &dir.path().join("out"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("must not carry"), "{err}");
}

#[test]
fn a_stable_root_uuid_keeps_unchanged_blocks_in_place_across_versions() {
    let Some((dir, tree)) = common::scratch_tree() else {
        return;
    };
    let build = |version: u64, seed: Option<&str>| {
        let mut spec = common::spec(&tree);
        spec.version = semver::Version::new(1, version, 0);
        spec.root_size = Some(8 << 20);
        spec.root_uuid_seed = seed.map(str::to_string);
        let out = dir.path().join(format!("{version}-{seed:?}"));
        let release = build_release(&spec, &out).unwrap();
        std::fs::read(release.root.path).unwrap()
    };
    let differing = |a: &[u8], b: &[u8]| {
        a.chunks(4096)
            .zip(b.chunks(4096))
            .filter(|(x, y)| x != y)
            .count()
    };
    let stable = differing(&build(1, Some("dev")), &build(2, Some("dev")));
    let fresh = differing(&build(1, None), &build(2, None));
    // Only os-release's block and the metadata that counts it (inode, bitmaps, superblock
    // copies) change with a stable UUID; with one UUID per version every checksummed block does.
    assert!(stable < fresh, "stable {stable}, per version {fresh}");
    assert!(stable <= 16, "{stable} blocks differ");
}
