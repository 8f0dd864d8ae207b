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

use crate::optim::Parameters;
use crate::{Error, Float, Result};

/// `path` with a hidden temporary name beside it (same directory, so rename is atomic).
pub(crate) fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// An `Error::Io` naming the file.
pub(crate) fn io_error(path: &Path, error: &std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

/// Writes `bytes` to `path` atomically: the file is either the old one or the new one.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let temporary = temporary_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    result.map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        io_error(path, &error)
    })
}

/// Saves every parameter of `model` to a safetensors file, under its PyTorch `state_dict`
/// name and in PyTorch's layout (weights `[out, in]`), in the model's float type (`F32`
/// or `F64`). The write is atomic: a crash leaves the old file or the new one, never half
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
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    model.visit_parameters(&mut |p| {
        let mut bytes = Vec::with_capacity(std::mem::size_of_val(p.value));
        // Row-major order, as PyTorch stores a contiguous tensor.
        for &v in p.value.iter() {
            match dtype {
                Dtype::F32 => bytes.extend_from_slice(&(v.as_f64() as f32).to_le_bytes()),
                _ => bytes.extend_from_slice(&v.as_f64().to_le_bytes()),
            }
        }
        tensors.push((p.name.to_string(), p.shape.to_vec(), bytes));
    });
    let mut views = Vec::with_capacity(tensors.len());
    for (name, shape, bytes) in &tensors {
        let view =
            safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes).map_err(|e| {
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

/// Loads parameters saved by [`save_safetensors`] or by PyTorch's
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
    let fail = |message: String| Error::Io {
        path: path.display().to_string(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| io_error(path, &e))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| fail(format!("not a valid safetensors file: {e}")))?;
    let expected = model.parameter_shapes();
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
        let array = ArrayD::from_shape_vec(ndarray::IxDyn(shape), numbers).map_err(|_| {
            fail(format!(
                "key `{name}`: data length does not match shape {shape:?}"
            ))
        })?;
        values.push(array);
    }
    let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
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
    Ok(())
}
