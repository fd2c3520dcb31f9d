//! `pcibox completions SHELL` and `pcibox man`: shell completions and man
//! pages generated from the CLI definition itself (clap_complete,
//! clap_mangen), so they can never drift from the real options.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `pcibox completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell to write a completion script for (to standard output).
    pub shell: clap_complete::Shell,
}

/// Arguments of `pcibox man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `pcibox.1` and one `pcibox-COMMAND.1` per subcommand into DIR
    /// instead of printing `pcibox.1` to standard output.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// What went wrong writing completions or man pages.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: CompletionArgs, mut cli: clap::Command) -> Result<ExitCode, super::Error> {
    let name = cli.get_name().to_string();
    clap_complete::generate(args.shell, &mut cli, name, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Prints `pcibox.1`, or writes every page into `args.dir`.
pub fn man(args: ManArgs, cli: clap::Command) -> Result<ExitCode, super::Error> {
    let cli = cli.version(env!("CARGO_PKG_VERSION"));
    let Some(dir) = args.dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(cli)
            .render(&mut out)
            .map_err(Error::Stdout)?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    write_page(&dir, "pcibox", clap_mangen::Man::new(cli.clone()))?;
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        // Name and title `pcibox-lspci`, synopsis `pcibox lspci …`.
        let name = format!("pcibox-{}", sub.get_name());
        let sub = sub
            .clone()
            .bin_name(format!("pcibox {}", sub.get_name()))
            .name(name.clone())
            .version(env!("CARGO_PKG_VERSION"));
        write_page(&dir, &name, clap_mangen::Man::new(sub))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_page(dir: &Path, name: &str, page: clap_mangen::Man) -> Result<(), Error> {
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    page.render(&mut buf)
        .and_then(|()| std::fs::write(&path, buf))
        .map_err(|source| Error::Write { path, source })
}
