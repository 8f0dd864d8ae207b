//! Files: weights as safetensors with PyTorch `state_dict` names, and atomic writes.
//!
//! Every write goes to a temporary file in the same directory and is then renamed over
//! the target, so a crash never leaves a half-written file over a good one.
//!
//! Moving weights to PyTorch and back:
//!
//! ```text
//! nnscratch::io::save_safetensors(&mut model, "model.safetensors")?;
//! # Python:  net.load_state_dict(safetensors.torch.load_file("model.safetensors"))
//! # Python:  safetensors.torch.save_file(net.state_dict(), "from_torch.safetensors")
//! nnscratch::io::load_safetensors(&mut model, "from_torch.safetensors")?;
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use safetensors::{Dtype, SafeTensors};

use crate::optim::{BufferValue, Parameters};
use crate::{Error, Float, Result};

/// An `Error::Io` naming the file.
pub(crate) fn io_error(path: &Path, error: &std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// The file a write to `path` must replace: `path` itself, or, if `path` is a symbolic
/// link (or a chain of them, even dangling), the file it finally points to, so that a
/// save through a link updates the linked file and keeps the link.
pub(crate) fn resolve_target(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(Error::Io {
            path: String::new(),
            message: "empty path: expected a file name to write".into(),
        });
    }
    let mut target = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&target).map_err(|e| io_error(path, &e))?;
                target = match target.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            Ok(meta) if meta.is_dir() => {
                return Err(Error::Io {
                    path: path.display().to_string(),
                    message: "is a directory: expected a file name to write".into(),
                });
            }
            _ => return Ok(target),
        }
    }
    Err(Error::Io {
        path: path.display().to_string(),
        message: "too many levels of symbolic links".into(),
    })
}

/// The prefix of the temporary files of saves to `file_name` by process `pid`.
fn temporary_prefix(file_name: &str, pid: u32) -> String {
    format!(".{file_name}.nnscratch-{pid}-")
}

/// Removes temporary files that saves to `target` left behind when their process was
/// killed (Linux: the process id in the name no longer exists). Best effort: a file
/// that cannot be read or removed is left alone.
fn remove_stale_temporaries(dir: &Path, file_name: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return; // no way to tell a dead saver from a live one
    }
    let prefix = format!(".{file_name}.nnscratch-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A new, uniquely named temporary file beside `target` (same directory, so the final
/// rename is atomic), with `target`'s permissions if it exists.
pub(crate) fn temporary_beside(target: &Path, shown: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Io {
            path: shown.display().to_string(),
            message: "expected a path that ends in a file name".into(),
        })?;
    remove_stale_temporaries(dir, &file_name);
    let prefix = temporary_prefix(&file_name, std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Keep the permissions of the file being replaced; a new file gets the usual
    // 0666 less the umask, not the 0600 of a temporary file.
    let existing = std::fs::metadata(target).ok().map(|m| m.permissions());
    #[cfg(unix)]
    let default = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o666)
    };
    #[cfg(unix)]
    builder.permissions(existing.clone().unwrap_or(default));
    let file = builder.tempfile_in(dir).map_err(|e| io_error(shown, &e))?;
    if let Some(permissions) = existing {
        // The umask applied at creation may have narrowed them: set them exactly.
        std::fs::set_permissions(file.path(), permissions).map_err(|e| io_error(shown, &e))?;
    }
    Ok(file)
}

/// Renames a finished temporary over `target` and makes the rename durable by syncing
/// the directory. On failure the temporary is removed (dropping it deletes it).
pub(crate) fn persist(file: tempfile::NamedTempFile, target: &Path, shown: &Path) -> Result<()> {
    file.as_file().sync_all().map_err(|e| io_error(shown, &e))?;
    file.persist(target)
        .map_err(|e| io_error(shown, &e.error))?;
    #[cfg(unix)]
    if let Some(dir) = target.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(handle) = std::fs::File::open(dir) {
            let _ = handle.sync_all();
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never
/// part of one, however many threads or processes save to the same path at once.
///
/// The bytes go to a uniquely named temporary file in the same directory, which is
/// synced and renamed over the target; the directory is then synced. A write through a
/// symbolic link replaces the file it points to and keeps the link; the replaced file's
/// permissions are kept. Temporaries left by a killed process are removed by the next
/// save to the same path.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let target = resolve_target(path)?;
    let mut file = temporary_beside(&target, path)?;
    file.write_all(bytes).map_err(|e| io_error(path, &e))?;
    persist(file, &target, path)
}

/// The bytes of a regular file, read no further than its length says: a device
/// (`/dev/zero`) or a file that grows while it is read cannot exhaust memory.
pub(crate) fn read_regular_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
    let meta = file.metadata().map_err(|e| io_error(path, &e))?;
    if !meta.is_file() {
        return Err(Error::Io {
            path: path.display().to_string(),
            message: "not a regular file".into(),
        });
    }
    let length = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    let mut bytes = crate::alloc::try_with_capacity("file contents", &[length], length)?;
    file.take(meta.len())
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    Ok(bytes)
}

/// Saves every parameter and buffer of `model` to a safetensors file, under its PyTorch
/// `state_dict` name and in PyTorch's layout (weights `[out, in]`), in the model's float
/// type (`F32` or `F64`); BatchNorm's `num_batches_tracked` is an `I64` scalar, as
/// PyTorch saves it. The write is atomic: a crash leaves the old file or the new one, never half
/// of one. `torch.nn.Module.load_state_dict(safetensors.torch.load_file(path))` reads it.
pub fn save_safetensors<T: Float>(
    model: &mut (impl Parameters<T> + ?Sized),
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let dtype = if T::DTYPE == "float32" {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    model.visit_parameters(&mut |p| {
        let mut bytes = Vec::with_capacity(std::mem::size_of_val(p.value));
        // Row-major order, as PyTorch stores a contiguous tensor.
        for &v in p.value.iter() {
            match dtype {
                Dtype::F32 => bytes.extend_from_slice(&(v.as_f64() as f32).to_le_bytes()),
                _ => bytes.extend_from_slice(&v.as_f64().to_le_bytes()),
            }
        }
        tensors.push((p.name.to_string(), dtype, p.shape.to_vec(), bytes));
    });
    model.visit_buffers(&mut |b| match b.value {
        BufferValue::Float { shape, value } => {
            let mut bytes = Vec::with_capacity(std::mem::size_of_val(value));
            for &v in value.iter() {
                match dtype {
                    Dtype::F32 => bytes.extend_from_slice(&(v.as_f64() as f32).to_le_bytes()),
                    _ => bytes.extend_from_slice(&v.as_f64().to_le_bytes()),
                }
            }
            tensors.push((b.name.to_string(), dtype, shape.to_vec(), bytes));
        }
        // PyTorch's `num_batches_tracked`: an int64 tensor of no dimensions.
        BufferValue::Count(count) => {
            let count = i64::try_from(*count).unwrap_or(i64::MAX);
            tensors.push((
                b.name.to_string(),
                Dtype::I64,
                Vec::new(),
                count.to_le_bytes().to_vec(),
            ));
        }
    });
    let mut views = Vec::with_capacity(tensors.len());
    for (name, dtype, shape, bytes) in &tensors {
        let view =
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| {
                Error::Io {
                    path: path.display().to_string(),
                    message: format!("cannot encode `{name}`: {e}"),
                }
            })?;
        views.push((name.as_str(), view));
    }
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: format!("cannot encode safetensors: {e}"),
    })?;
    write_atomic(path, &bytes)
}

/// Loads parameters and buffers saved by [`save_safetensors`] or by PyTorch's
/// `safetensors.torch.save_file(model.state_dict(), path)` into `model`.
///
/// `F32` and `F64` tensors load into either float type (converted; `F64` into `f32`
/// rounds). Every key is checked before anything is written: a missing key, an extra
/// key, a wrong shape or dtype, or a file that is not safetensors is an error naming the
/// key (and both shapes), and the model is left unchanged.
pub fn load_safetensors<T: Float>(
    model: &mut (impl Parameters<T> + ?Sized),
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = read_regular_file(path)?;
    load_safetensors_bytes(model, &bytes, path)
}

/// [`load_safetensors`] from bytes already in memory; `path` is only used in messages.
pub fn load_safetensors_bytes<T: Float>(
    model: &mut (impl Parameters<T> + ?Sized),
    bytes: &[u8],
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let fail = |message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| fail(format!("not a valid safetensors file: {e}")))?;
    let expected = model.parameter_shapes();
    let buffers = model.buffer_shapes();
    let mut values: Vec<ArrayD<T>> = Vec::with_capacity(expected.len());
    for (name, shape) in &expected {
        let tensor = file
            .tensor(name)
            .map_err(|_| fail(format!("missing key `{name}` (expected shape {shape:?})")))?;
        if tensor.shape() != shape.as_slice() {
            return Err(fail(format!(
                "key `{name}`: expected shape {shape:?}, found {:?}",
                tensor.shape()
            )));
        }
        let array = read_floats(&tensor, name, shape, &fail)?;
        values.push(array);
    }
    // Buffers: floats as parameters are, counts as PyTorch's int64 scalars.
    let mut buffer_values: Vec<BufferData<T>> = Vec::with_capacity(buffers.len());
    let mut counts = Vec::new();
    model.visit_buffers(&mut |b| counts.push(matches!(b.value, BufferValue::Count(_))));
    for ((name, shape), is_count) in buffers.iter().zip(counts) {
        let tensor = file.tensor(name).map_err(|_| {
            fail(format!(
                "missing key `{name}` (a buffer, expected shape {shape:?})"
            ))
        })?;
        if tensor.shape() != shape.as_slice() {
            return Err(fail(format!(
                "key `{name}`: expected shape {shape:?}, found {:?}",
                tensor.shape()
            )));
        }
        if is_count {
            if tensor.dtype() != Dtype::I64 {
                return Err(fail(format!(
                    "key `{name}`: dtype {:?}; expected I64 (a count, as PyTorch saves it)",
                    tensor.dtype()
                )));
            }
            let data = tensor.data();
            let bytes: [u8; 8] = data
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| fail(format!("key `{name}`: expected 8 bytes of I64")))?;
            let count = i64::from_le_bytes(bytes);
            let count = u64::try_from(count).map_err(|_| {
                fail(format!(
                    "key `{name}`: a count cannot be negative, found {count}"
                ))
            })?;
            buffer_values.push(BufferData::Count(count));
        } else {
            buffer_values.push(BufferData::Float(read_floats(&tensor, name, shape, &fail)?));
        }
    }
    let known: std::collections::HashSet<&str> = expected
        .iter()
        .chain(&buffers)
        .map(|(n, _)| n.as_str())
        .collect();
    let mut extra: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !known.contains(n))
        .collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(fail(format!(
            "unexpected key{} {}: the model's parameters are {}",
            if extra.len() > 1 { "s" } else { "" },
            extra
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            expected
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut values = values.into_iter();
    model.visit_parameters(&mut |p| {
        if let Some(value) = values.next() {
            for (slot, &v) in p.value.iter_mut().zip(value.iter()) {
                *slot = v;
            }
        }
    });
    let mut buffer_values = buffer_values.into_iter();
    model.visit_buffers(&mut |b| match (b.value, buffer_values.next()) {
        (BufferValue::Float { value, .. }, Some(BufferData::Float(data))) => {
            for (slot, &v) in value.iter_mut().zip(data.iter()) {
                *slot = v;
            }
        }
        (BufferValue::Count(count), Some(BufferData::Count(data))) => *count = data,
        _ => unreachable!("read in the same order, with the same kinds"),
    });
    Ok(())
}

/// A buffer read from a file, before it is written into the model.
enum BufferData<T> {
    Float(ArrayD<T>),
    Count(u64),
}

/// An `F32` or `F64` tensor of the expected shape as `T`s.
fn read_floats<T: Float>(
    tensor: &safetensors::tensor::TensorView<'_>,
    name: &str,
    shape: &[usize],
    fail: &dyn Fn(String) -> Error,
) -> Result<ArrayD<T>> {
    let data = tensor.data();
    let numbers: Vec<T> = match tensor.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| T::of(f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| {
                T::of(f64::from_le_bytes([
                    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
                ]))
            })
            .collect(),
        other => {
            return Err(fail(format!(
                "key `{name}`: dtype {other:?} is not supported; expected F32 or F64"
            )));
        }
    };
    ArrayD::from_shape_vec(ndarray::IxDyn(shape), numbers).map_err(|_| {
        fail(format!(
            "key `{name}`: data length does not match shape {shape:?}"
        ))
    })
}
