//! `cargo xtask e2e [FILTER…] [--disk PATH] [-j N] [--self-test] [--list] [-v]`

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: cargo xtask e2e [FILTER…] [--disk PATH] [-j N] [--self-test] [--list] [-v] [--append ARGS]
  FILTER       run the tests whose name contains any FILTER (default: all)
  --disk PATH  attach this raw image to the NVMe controller in every test (read-only: snapshot=on)
  -j N         run N VMs at a time (default 2)
  --self-test  run the hidden rig self-tests; each passes if its outcome is the expected one
  --list       list the selected tests and their needs, run nothing
  -v           echo every guest console line
  --append ARGS  extra guest kernel parameters (e.g. \"loglevel=7\" to see the whole boot)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub filters: Vec<String>,
    pub disk: Option<PathBuf>,
    pub jobs: usize,
    pub self_test: bool,
    pub list: bool,
    pub verbose: bool,
    /// Extra kernel command-line parameters.
    pub append: String,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            filters: Vec::new(),
            disk: None,
            jobs: 2,
            self_test: false,
            list: false,
            verbose: false,
            append: String::new(),
        }
    }
}

/// Parses the arguments after `e2e`.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // `--opt=value` and `--opt value` are both accepted.
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with('-') => (k.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match key.as_str() {
            "--disk" => out.disk = Some(PathBuf::from(value("--disk")?)),
            "-j" | "--jobs" => {
                let v = value("-j")?;
                out.jobs = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("-j wants a positive number, not {v:?}")),
                };
            }
            "--self-test" => out.self_test = true,
            "--list" => out.list = true,
            "-v" | "--verbose" => out.verbose = true,
            "--append" => {
                let v = value("--append")?;
                if !out.append.is_empty() {
                    out.append.push(' ');
                }
                out.append.push_str(&v);
            }
            "-h" | "--help" => return Err(String::new()),
            k if k.starts_with("-j") && k.len() > 2 => {
                out.jobs = match k[2..].parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("-j wants a positive number, not {:?}", &k[2..])),
                };
            }
            k if k.starts_with('-') => return Err(format!("unknown option {k}")),
            _ => out.filters.push(arg),
        }
    }
    Ok(out)
}

/// Whether `name` is selected by the filters (substring match; no filters select everything).
pub fn selected(filters: &[String], name: &str) -> bool {
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(p(&[]), Ok(Args::default()));
        assert_eq!(Args::default().jobs, 2);
    }

    #[test]
    fn filters_and_options() {
        let a = p(&["rig-", "nvme", "--disk", "/x.img", "-j", "3", "-v"]).expect("parse");
        assert_eq!(a.filters, vec!["rig-", "nvme"]);
        assert_eq!(a.disk, Some(PathBuf::from("/x.img")));
        assert_eq!(a.jobs, 3);
        assert!(a.verbose && !a.self_test && !a.list);
        assert_eq!(p(&["-j4"]).map(|a| a.jobs), Ok(4));
        assert_eq!(p(&["--jobs=1"]).map(|a| a.jobs), Ok(1));
        assert_eq!(
            p(&["--disk=/y"]).map(|a| a.disk),
            Ok(Some(PathBuf::from("/y")))
        );
        assert!(p(&["--self-test", "--list"])
            .map(|a| a.self_test && a.list)
            .unwrap_or(false));
    }

    #[test]
    fn errors() {
        assert!(p(&["-j"]).is_err());
        assert!(p(&["-j", "0"]).is_err());
        assert!(p(&["-j", "x"]).is_err());
        assert!(p(&["--disk"]).is_err());
        assert!(p(&["--bogus"]).is_err());
    }

    #[test]
    fn selection() {
        assert!(selected(&[], "rig-boot"));
        let f = vec!["vfio".to_owned(), "boot".to_owned()];
        assert!(selected(&f, "rig-boot"));
        assert!(selected(&f, "rig-vfio-bind"));
        assert!(!selected(&f, "nvme-identify"));
    }
}
