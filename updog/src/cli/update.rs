//! `updog update` and `updog update-image`.

use super::{Context, Outcome};
use crate::error::Result;
use crate::updater::{Applied, Request};
use clap::Args;
use semver::Version;

/// Install, apply, and reboot if asked.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    image: UpdateImageArgs,
    /// Reboot into the new set when it is applied.
    #[arg(long)]
    reboot: bool,
}

/// Install into the inactive set without applying.
#[derive(Debug, Args)]
pub struct UpdateImageArgs {
    /// Install exactly this version (even one whose first boot failed here).
    #[arg(long)]
    image: Option<Version>,
    /// Ignore waves.
    #[arg(long, visible_alias = "ignore-waves")]
    now: bool,
}

impl UpdateImageArgs {
    fn request(&self) -> Request {
        Request {
            image: self.image.clone(),
            ignore_waves: self.now,
        }
    }

    pub(crate) fn run(&self, ctx: &Context) -> Result<Outcome> {
        let lock = ctx.lock("update-image")?;
        install(self, ctx, &lock).map(|staged| {
            if staged {
                Outcome::Done
            } else {
                Outcome::NothingToDo
            }
        })
    }
}

/// Installs; true when something was staged.
fn install(args: &UpdateImageArgs, ctx: &Context, lock: &crate::UpdateLock) -> Result<bool> {
    let updater = ctx.updater()?;
    let sink = ctx.sink();
    let installed = ctx.runtime.block_on(crate::install::install(
        &updater,
        lock,
        &args.request(),
        sink.as_ref(),
        &ctx.cancel,
    ))?;
    let quiet = ctx.progress == super::ProgressMode::Json;
    match installed {
        None => {
            if !quiet {
                println!("no update available");
            }
            Ok(false)
        }
        Some(installed) => {
            if !quiet {
                println!("staged {} in set {}", installed.version, installed.set);
            }
            Ok(true)
        }
    }
}

impl UpdateArgs {
    pub(crate) fn run(&self, ctx: &Context) -> Result<Outcome> {
        let lock = ctx.lock("update")?;
        if !install(&self.image, ctx, &lock)? {
            return Ok(Outcome::NothingToDo);
        }
        let updater = ctx.updater()?;
        if let Applied::Now(set) | Applied::Already(set) = updater.apply(&lock)? {
            if ctx.progress != super::ProgressMode::Json {
                println!("set {set} boots next");
            }
        }
        if self.reboot {
            drop(lock);
            updater.reboot()?;
        }
        Ok(Outcome::Done)
    }
}
