//! Asking before a command destroys data: `--yes` goes ahead, a terminal on stdin is asked,
//! anything else is refused before the device is touched. `main` exits with status 2 (a usage
//! error, as clap's) when a [`NotConfirmed`] reaches it.

use std::io::{BufRead, IsTerminal, Write};

/// `--yes` for subcommands that overwrite a device.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Yes {
    /// Overwrite without asking (needed when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// A destructive command that was not confirmed; nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum NotConfirmed {
    /// No `--yes` and nobody to ask.
    #[error("{0}; pass --yes to do it (stdin is not a terminal to ask on)")]
    NoTerminal(String),
    /// Asked on the terminal; the answer was not yes.
    #[error("{0}: not confirmed, nothing done")]
    Declined(String),
}

/// Goes ahead if `yes.yes`; otherwise asks on the terminal, or refuses without one. `what` says
/// what would be destroyed, e.g. `nvme write would overwrite 8 blocks at LBA 0 of vfio:…`.
pub fn destructive(what: &str, yes: Yes) -> Result<(), NotConfirmed> {
    if yes.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(NotConfirmed::NoTerminal(what.to_string()));
    }
    ask(what, &mut stdin.lock(), &mut std::io::stderr())
}

/// Asks `what. Continue? [y/N]` on `out` and reads one answer line from `input`.
fn ask(what: &str, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<(), NotConfirmed> {
    let _ = write!(out, "pcibox: {what}. Continue? [y/N] ");
    let _ = out.flush();
    let mut line = String::new();
    let answer = input
        .read_line(&mut line)
        .map(|_| line.trim().to_lowercase());
    match answer.as_deref() {
        Ok("y" | "yes") => Ok(()),
        _ => Err(NotConfirmed::Declined(what.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn answer(text: &str) -> (Result<(), NotConfirmed>, String) {
        let mut out = Vec::new();
        let r = ask("it would overwrite X", &mut text.as_bytes(), &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn only_yes_goes_ahead() {
        for yes in ["y\n", "yes\n", " YES \n", "Y"] {
            let (r, prompt) = answer(yes);
            assert!(r.is_ok(), "{yes:?}");
            assert_eq!(prompt, "pcibox: it would overwrite X. Continue? [y/N] ");
        }
        for no in ["\n", "n\n", "no\n", "yes please\n", ""] {
            let e = answer(no).0.unwrap_err().to_string();
            assert_eq!(
                e, "it would overwrite X: not confirmed, nothing done",
                "{no:?}"
            );
        }
    }

    #[test]
    fn yes_flag_skips_the_question() {
        assert!(destructive("anything", Yes { yes: true }).is_ok());
    }
}
