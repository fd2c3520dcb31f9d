//! A writer for the "newc" cpio format (`070701`), the format the Linux kernel unpacks as an
//! initramfs. Only what the rig needs: directories, regular files, symlinks and character device
//! nodes, all owned by root. Archives can be concatenated: `finish` pads to a 512-byte boundary
//! (the kernel wants each archive to start 4-byte aligned).

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// An archive being built in memory.
#[derive(Debug, Default)]
pub struct Archive {
    buf: Vec<u8>,
    next_ino: u32,
}

/// The fields of one newc header that vary between entries.
struct Entry<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &'a [u8],
}

fn pad4(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

impl Archive {
    pub fn new() -> Archive {
        Archive {
            buf: Vec::new(),
            next_ino: 1,
        }
    }

    fn push(&mut self, e: Entry<'_>, ino: u32) {
        // Names are stored without a leading slash, NUL-terminated.
        let name = e.name.trim_start_matches('/');
        let fields: [u32; 13] = [
            ino,
            e.mode,
            0, // uid
            0, // gid
            e.nlink,
            0, // mtime: fixed, so archives are reproducible
            e.data.len() as u32,
            0, // devmajor
            0, // devminor
            e.rdev.0,
            e.rdev.1,
            name.len() as u32 + 1,
            0, // check (unused by newc)
        ];
        self.buf.extend_from_slice(b"070701");
        for f in fields {
            self.buf.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        pad4(&mut self.buf);
        self.buf.extend_from_slice(e.data);
        pad4(&mut self.buf);
    }

    fn add(&mut self, e: Entry<'_>) {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.push(e, ino);
    }

    /// A directory; parents must be added first.
    pub fn dir(&mut self, path: &str, perm: u32) {
        self.add(Entry {
            name: path,
            mode: S_IFDIR | (perm & 0o7777),
            nlink: 2,
            rdev: (0, 0),
            data: &[],
        });
    }

    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        self.add(Entry {
            name: path,
            mode: S_IFREG | (perm & 0o7777),
            nlink: 1,
            rdev: (0, 0),
            data,
        });
    }

    pub fn symlink(&mut self, path: &str, target: &str) {
        self.add(Entry {
            name: path,
            mode: S_IFLNK | 0o777,
            nlink: 1,
            rdev: (0, 0),
            data: target.as_bytes(),
        });
    }

    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        self.add(Entry {
            name: path,
            mode: S_IFCHR | (perm & 0o7777),
            nlink: 1,
            rdev: (major, minor),
            data: &[],
        });
    }

    /// Appends the trailer and pads to 512 bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.push(
            Entry {
                name: "TRAILER!!!",
                mode: 0,
                nlink: 1,
                rdev: (0, 0),
                data: &[],
            },
            0,
        );
        while self.buf.len() % 512 != 0 {
            self.buf.push(0);
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn header_layout() {
        let mut a = Archive::new();
        a.file("/init", 0o755, b"hi");
        let out = a.finish();
        let hdr = std::str::from_utf8(&out[..110]).expect("ascii header");
        assert_eq!(&hdr[..6], "070701");
        let field = |i: usize| u32::from_str_radix(&hdr[6 + 8 * i..14 + 8 * i], 16).expect("hex");
        assert_eq!(field(0), 1, "ino");
        assert_eq!(field(1), 0o100_755, "mode");
        assert_eq!(field(6), 2, "filesize");
        assert_eq!(field(11), 5, "namesize incl. NUL");
        // 110 + "init\0" = 115 → padded to 116, then the data.
        assert_eq!(&out[110..116], b"init\0\0");
        assert_eq!(&out[116..118], b"hi");
        assert_eq!(&out[118..120], b"\0\0");
        assert_eq!(&out[120..126], b"070701");
        assert_eq!(out.len() % 512, 0);
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn device_numbers_in_rdev() {
        let mut a = Archive::new();
        a.char_dev("dev/console", 0o600, 5, 1);
        let out = a.finish();
        let hdr = std::str::from_utf8(&out[..110]).expect("ascii header");
        let field = |i: usize| u32::from_str_radix(&hdr[6 + 8 * i..14 + 8 * i], 16).expect("hex");
        assert_eq!(field(1), 0o020_600);
        assert_eq!((field(9), field(10)), (5, 1));
    }

    /// GNU cpio (nobody here wrote it) must list and extract what we wrote.
    #[test]
    fn gnu_cpio_reads_it() {
        let mut a = Archive::new();
        a.dir("bin", 0o755);
        a.file("bin/hello", 0o644, b"hello, world\n");
        a.symlink("bin/sh", "busybox");
        a.file("odd", 0o600, b"abc");
        let archive = a.finish();
        let dir = std::env::temp_dir().join(format!("xtask-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmpdir");
        let mut child = Command::new("cpio")
            .args(["-i", "-d", "--quiet", "--no-absolute-filenames"])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .expect("cpio(1) must be installed (scripts/test.sh installs it)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&archive)
            .expect("write");
        assert!(child.wait().expect("wait").success());
        assert_eq!(
            std::fs::read(dir.join("bin/hello")).expect("hello"),
            b"hello, world\n"
        );
        assert_eq!(std::fs::read(dir.join("odd")).expect("odd"), b"abc");
        assert_eq!(
            std::fs::read_link(dir.join("bin/sh")).expect("link"),
            std::path::PathBuf::from("busybox")
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn concatenated_archives_stay_aligned() {
        let mut a = Archive::new();
        a.file("x", 0o644, b"12345");
        let first = a.finish();
        assert_eq!(first.len() % 4, 0);
    }
}
