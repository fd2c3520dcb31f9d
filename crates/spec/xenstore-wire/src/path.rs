//! Path rules (docs/misc/xenstore.txt).
//!
//! A path is `/`-separated; absolute paths start with `/`, relative ones are
//! taken relative to the caller's home `/local/domain/<domid>`. Allowed
//! characters are ASCII alphanumerics and `-/_@`; doubled slashes and a
//! trailing slash (except the root `/`) are forbidden, as is the empty path.
//! Absolute paths are at most [`crate::ABS_PATH_MAX`] bytes. Watch paths may
//! instead name a special event: `@` followed by printable characters
//! (`@introduceDomain`, `@releaseDomain`).

use crate::{Error, ABS_PATH_MAX, REL_PATH_MAX};

/// The watch path of domain-introduction events.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// The watch path of domain-release events.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@')
}

/// Checks a node path (absolute or relative) and returns it as `&str`.
pub fn check(path: &[u8]) -> Result<&str, Error> {
    if path.is_empty() || path.len() > ABS_PATH_MAX {
        return Err(Error::BadPath);
    }
    if !path.iter().all(|&b| allowed(b)) {
        return Err(Error::BadPath);
    }
    if path.windows(2).any(|w| w == b"//") {
        return Err(Error::BadPath);
    }
    if path.len() > 1 && path.ends_with(b"/") {
        return Err(Error::BadPath);
    }
    core::str::from_utf8(path).map_err(|_| Error::BadPath)
}

/// Whether a checked path is a special watch path (`@…`).
pub fn is_special(path: &str) -> bool {
    path.starts_with('@')
}

/// Checks a watch path: a node path, or a special `@name` made of printable
/// ASCII of at most [`crate::REL_PATH_MAX`] bytes.
pub fn check_watch(path: &[u8]) -> Result<&str, Error> {
    if path.first() == Some(&b'@') {
        if path.len() > REL_PATH_MAX || !path.iter().all(|b| b.is_ascii_graphic()) {
            return Err(Error::BadPath);
        }
        return core::str::from_utf8(path).map_err(|_| Error::BadPath);
    }
    check(path)
}

/// Whether `path` is absolute.
pub fn is_absolute(path: &str) -> bool {
    path.starts_with('/')
}

/// Whether `child` is `parent` itself or lies below it (xenstore.txt's
/// "child" relation: identical, parent is `/`, or `parent/` is a prefix).
pub fn is_child(child: &str, parent: &str) -> bool {
    if parent == "/" {
        return child.starts_with('/');
    }
    child == parent
        || (child.len() > parent.len()
            && child.starts_with(parent)
            && child.as_bytes()[parent.len()] == b'/')
}

/// The parent of an absolute path; `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// The last component of a path.
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent and a child name.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The home of a domain, the base of its relative paths.
pub fn domain_home(domid: u16) -> String {
    format!("/local/domain/{domid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        for ok in ["/", "/a", "/a/b-c_d@e", "a/b", "x", "/local/domain/0"] {
            assert!(check(ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in ["", "//", "/a//b", "/a/", "a/", "/a b", "/a.b", "/a\0", "/é"] {
            assert_eq!(check(bad.as_bytes()), Err(Error::BadPath), "{bad:?}");
        }
        let long = format!("/{}", "a".repeat(ABS_PATH_MAX - 1));
        assert!(check(long.as_bytes()).is_ok());
        let too_long = format!("/{}", "a".repeat(ABS_PATH_MAX));
        assert!(check(too_long.as_bytes()).is_err());
        assert!(check_watch(b"@releaseDomain").is_ok());
        assert!(check_watch(b"@a b").is_err());
        assert!(check_watch(b"/a//").is_err());
    }

    #[test]
    fn relations() {
        assert!(is_child("/a/b", "/a"));
        assert!(is_child("/a", "/a"));
        assert!(is_child("/a", "/"));
        assert!(!is_child("/ab", "/a"));
        assert!(!is_child("/a", "/a/b"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(basename("/a/bc"), "bc");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(domain_home(3), "/local/domain/3");
    }
}
