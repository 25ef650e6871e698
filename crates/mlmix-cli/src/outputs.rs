//! The files a fit writes (the report with `-o`, `--json`, SAVEDATA),
//! checked before the fit and written so that a failure loses nothing.
//!
//! Before the fit ([`check`]): the folder of each output exists and can be
//! written in, the path is not a folder, a FIFO or a socket, no output is
//! the input file or the data file, and no two outputs name the same file
//! (paths compared after `canonicalize`). An existing output of a previous
//! run is overwritten, as Mplus does.
//!
//! After the fit ([`Output::stage`], [`Staged::commit`]): each output is
//! written to a temporary file in its own folder, every write and the last
//! flush checked, and only then renamed over its name, so a full disk or an
//! interrupted write leaves the old file (if any) as it was. A character
//! device (`/dev/null`) is written in place, its writes checked too.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mlmix::spec::source::file_kind;
use tempfile::NamedTempFile;

/// An output file that passed the checks.
#[derive(Debug)]
pub struct Output {
    /// What it is, for messages ("the JSON file").
    what: &'static str,
    /// The path as the user gave it.
    shown: PathBuf,
    /// Where it is written: the canonical path (or the device's path).
    dest: PathBuf,
    /// An existing character device, written in place.
    device: bool,
}

/// An output written to its temporary file, waiting to be renamed.
#[derive(Debug)]
pub struct Staged {
    temp: Option<(NamedTempFile, PathBuf)>,
    shown: PathBuf,
}

/// Checks the outputs (`(what, path)`) against each other and against the
/// files the run reads (`(what, path)`, which exist), before the fit.
pub fn check(
    outputs: &[(&'static str, &Path)],
    inputs: &[(&str, &Path)],
) -> anyhow::Result<Vec<Output>> {
    let read: Vec<(&str, PathBuf)> = inputs
        .iter()
        .filter_map(|(what, p)| p.canonicalize().ok().map(|c| (*what, c)))
        .collect();
    let mut checked: Vec<Output> = Vec::with_capacity(outputs.len());
    for &(what, path) in outputs {
        let out = Output::check(what, path)?;
        if out.device {
            checked.push(out);
            continue;
        }
        if let Some((input, _)) = read.iter().find(|(_, c)| *c == out.dest) {
            bail!(
                "{what} '{}' is the {input}: writing it would destroy the {input}; choose another file name",
                path.display()
            );
        }
        if let Some(other) = checked.iter().find(|o| !o.device && o.dest == out.dest) {
            bail!(
                "{} '{}' and {what} '{}' are the same file: give them different names",
                other.what,
                other.shown.display(),
                path.display()
            );
        }
        checked.push(out);
    }
    Ok(checked)
}

impl Output {
    /// Checks one output path: where it would be written, and whether it can
    /// be.
    fn check(what: &'static str, path: &Path) -> anyhow::Result<Output> {
        let shown = path.to_path_buf();
        let fail = |why: String| anyhow::anyhow!("cannot write {what} '{}': {why}", path.display());
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {
                let dest = path.canonicalize().map_err(|e| fail(e.to_string()))?;
                probe_folder(folder_of(&dest)).map_err(fail)?;
                Ok(Output {
                    what,
                    shown,
                    dest,
                    device: false,
                })
            }
            Ok(meta) if is_char_device(&meta) => Ok(Output {
                what,
                shown,
                dest: path.to_path_buf(),
                device: true,
            }),
            Ok(meta) => Err(fail(format!(
                "it is {}; give the name of a file",
                file_kind(&meta.file_type())
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(name) = path.file_name() else {
                    return Err(fail("it does not name a file".into()));
                };
                let folder = folder_of(path);
                match std::fs::metadata(folder) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(fail(format!("'{}' is not a folder", folder.display()))),
                    Err(_) => {
                        return Err(fail(format!(
                            "the folder '{}' does not exist",
                            folder.display()
                        )));
                    }
                }
                let dest = folder
                    .canonicalize()
                    .map_err(|e| fail(e.to_string()))?
                    .join(name);
                probe_folder(folder).map_err(fail)?;
                Ok(Output {
                    what,
                    shown,
                    dest,
                    device: false,
                })
            }
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// Writes the output with `body`: to a temporary file beside it (to be
    /// renamed by [`Staged::commit`]), or in place for a device.
    pub fn stage(
        &self,
        body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> anyhow::Result<Staged> {
        let context = || format!("writing {} '{}'", self.what, self.shown.display());
        if self.device {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&self.dest)
                .with_context(context)?;
            let mut w = BufWriter::new(file);
            body(&mut w)
                .and_then(|()| w.flush())
                .with_context(context)?;
            return Ok(Staged {
                temp: None,
                shown: self.shown.clone(),
            });
        }
        let mut temp = temp_file_in(folder_of(&self.dest)).with_context(context)?;
        if let Ok(meta) = std::fs::metadata(&self.dest) {
            // the new file keeps the permissions of the one it replaces
            let _ = temp.as_file().set_permissions(meta.permissions());
        }
        {
            let mut w = BufWriter::new(temp.as_file_mut());
            body(&mut w)
                .and_then(|()| w.flush())
                .with_context(context)?;
        }
        temp.as_file().sync_all().with_context(context)?;
        Ok(Staged {
            temp: Some((temp, self.dest.clone())),
            shown: self.shown.clone(),
        })
    }
}

impl Staged {
    /// Renames the temporary file over the output's name.
    pub fn commit(self) -> anyhow::Result<()> {
        if let Some((temp, dest)) = self.temp {
            temp.persist(&dest)
                .map_err(|e| e.error)
                .with_context(|| format!("replacing '{}'", self.shown.display()))?;
        }
        Ok(())
    }
}

/// The folder a file is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A new temporary file in `folder`, with the permissions a new file gets.
fn temp_file_in(folder: &Path) -> std::io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".mlmix-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // as `File::create`: 0666 less the umask
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(folder)
}

/// Checks that a file can be created in `folder` (and removes it).
fn probe_folder(folder: &Path) -> Result<(), String> {
    temp_file_in(folder)
        .map(drop)
        .map_err(|e| format!("cannot create a file in '{}': {e}", folder.display()))
}

fn is_char_device(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_char_device()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}
