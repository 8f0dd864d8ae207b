//! Data loading: IDX files the test writes itself (plain, gzip, truncated, garbage), the
//! MNIST directory layout, splits and mini-batches.

use std::io::Write;

use ndarray::arr2;
use nnscratch::data::{self, MiniBatches, Standardize, idx};
use rand::SeedableRng;

/// A fresh directory under the system's temporary directory, removed when dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("nnscratch-data-{name}-"))
        .tempdir()
        .unwrap()
}

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A tiny MNIST: 3 training and 2 test images of 2x2 pixels.
fn write_tiny_mnist(dir: &std::path::Path, compress: bool) {
    let files = [
        (
            "train-images.idx3-ubyte",
            idx_bytes(
                &[3, 2, 2],
                &[0, 255, 0, 255, 1, 2, 3, 4, 255, 255, 255, 255],
            ),
        ),
        ("train-labels.idx1-ubyte", idx_bytes(&[3], &[7, 0, 9])),
        (
            "t10k-images.idx3-ubyte",
            idx_bytes(&[2, 2, 2], &[0, 0, 0, 0, 51, 51, 51, 51]),
        ),
        ("t10k-labels.idx1-ubyte", idx_bytes(&[2], &[1, 2])),
    ];
    for (name, bytes) in files {
        if compress {
            std::fs::write(dir.join(format!("{name}.gz")), gzip(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

#[test]
fn plain_and_gzip_idx_files_read_the_same() {
    for compress in [false, true] {
        let scratch = temp_dir(if compress { "gz" } else { "plain" });
        let dir = scratch.path();
        write_tiny_mnist(dir, compress);
        let (train, test) = idx::mnist(dir).unwrap();
        assert_eq!(train.inputs.dim(), (3, 4));
        assert_eq!(train.labels, [7, 0, 9]);
        assert_eq!(train.inputs.row(0).to_vec(), [0.0, 1.0, 0.0, 1.0]);
        assert_eq!(test.labels, [1, 2]);
        assert_eq!(test.inputs[[1, 0]], 0.2);
    }
}

#[test]
fn truncated_and_garbage_idx_files_are_errors_naming_the_file() {
    let path = std::path::Path::new("images.idx3-ubyte");
    let full = idx_bytes(&[2, 2, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            full[..full.len() - 3].to_vec(),
            "data length 5 does not match",
        ),
        (full[..6].to_vec(), "truncated header"),
        (vec![0, 0], "too short"),
        (b"GIF89a garbage".to_vec(), "not an IDX file"),
        (
            vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
            "type 0x0d is not supported",
        ),
        (vec![0x1f, 0x8b, 1, 2, 3], "corrupt gzip"),
        (gzip(&full)[..20].to_vec(), "corrupt gzip"),
    ];
    for (bytes, expected) in cases {
        let message = idx::parse(&bytes, path).unwrap_err().to_string();
        assert!(
            message.starts_with("images.idx3-ubyte: ") && message.contains(expected),
            "{message}"
        );
    }
}

#[test]
fn a_missing_file_or_bad_labels_say_which_file() {
    let scratch = temp_dir("missing");
    let dir = scratch.path();
    write_tiny_mnist(dir, false);
    std::fs::remove_file(dir.join("t10k-labels.idx1-ubyte")).unwrap();
    let message = idx::mnist(dir).unwrap_err().to_string();
    assert!(
        message.contains("t10k-labels.idx1-ubyte") && message.contains("missing"),
        "{message}"
    );

    std::fs::write(
        dir.join("t10k-labels.idx1-ubyte"),
        idx_bytes(&[2], &[1, 12]),
    )
    .unwrap();
    let message = idx::mnist(dir).unwrap_err().to_string();
    assert!(message.contains("label 12 at index 1"), "{message}");

    std::fs::write(
        dir.join("t10k-labels.idx1-ubyte"),
        idx_bytes(&[3], &[1, 2, 3]),
    )
    .unwrap();
    let message = idx::mnist(dir).unwrap_err().to_string();
    assert!(message.contains("3 labels for 2 images"), "{message}");
}

#[test]
fn splits_are_seeded_and_partition_the_samples() {
    let (train, test) = data::split_indices(100, 0.2, 7);
    assert_eq!((train.len(), test.len()), (80, 20));
    let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(data::split_indices(100, 0.2, 7), (train, test));
    assert_ne!(
        data::split_indices(100, 0.2, 8).1,
        data::split_indices(100, 0.2, 7).1
    );
}

#[test]
fn mini_batches_cover_every_sample_once_per_epoch() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let batches = MiniBatches::shuffled(103, 20, &mut rng);
    assert_eq!(batches.len(), 6);
    let sizes: Vec<usize> = batches.iter().map(<[usize]>::len).collect();
    assert_eq!(sizes, [20, 20, 20, 20, 20, 3]);
    let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
    assert_ne!(seen, (0..103).collect::<Vec<_>>(), "shuffled");
    seen.sort_unstable();
    assert_eq!(seen, (0..103).collect::<Vec<_>>());
}

#[test]
fn consecutive_rows_are_a_view_and_shuffled_rows_a_copy() {
    let x = arr2(&[[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]);
    let mut buffer = ndarray::Array2::zeros((0, 0));
    let view = data::gather_rows(x.view(), &[1, 2], &mut buffer).unwrap();
    assert_eq!(view, arr2(&[[2.0, 3.0], [4.0, 5.0]]));
    assert_eq!(
        view.as_ptr(),
        x.row(1).as_ptr(),
        "no copy for consecutive rows"
    );
    let copy = data::gather_rows(x.view(), &[3, 0], &mut buffer)
        .unwrap()
        .to_owned();
    assert_eq!(copy, arr2(&[[6.0, 7.0], [0.0, 1.0]]));
    let mut labels = Vec::new();
    assert_eq!(
        data::gather_labels(&[5, 6, 7, 8], &[3, 0], &mut labels).unwrap(),
        [8, 5]
    );
}

#[test]
fn standardize_centres_and_scales_each_feature() {
    let x = arr2(&[[1.0f32, 10.0, 3.0], [3.0, 30.0, 3.0]]);
    let s = Standardize::fit(x.view());
    assert_eq!(s.mean.to_vec(), [2.0, 20.0, 3.0]);
    assert_eq!(s.std.to_vec(), [1.0, 10.0, 0.0]);
    assert_eq!(
        s.transform(x.view()).unwrap(),
        arr2(&[[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    );
}

#[test]
fn the_embedded_digits_split_into_train_and_test() {
    let digits = data::digits().unwrap();
    let (train, test) = digits.split(0.2, 0).unwrap();
    assert_eq!((train.len(), test.len()), (1438, 359));
    assert_eq!(train.inputs.ncols(), 64);
}
