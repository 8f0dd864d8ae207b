//! A fast `tanh` for `f32` slices that vectorises, within 2 ulp of the exact value.
//!
//! `f32::tanh` calls the C library one element at a time (about 15 ns each), which
//! dominates a Tanh network. Here, as in Cephes' `tanhf`:
//!
//! ```text
//! |x| < 0.625:  tanh x = x + x³·P(x²)              (odd minimax polynomial)
//! otherwise:    tanh x = sign(x)·(1 - 2/(e^{2|x|} + 1)),  e^{2|x|} by expf below
//! expf(v):      v = n·ln2 + r, |r| <= ln2/2 (two-part ln2, Cody-Waite);
//!               e^r = 1 + r + r²·Q(r);  e^v = 2^n·e^r (2^n built from its bits)
//! ```
//!
//! Both branches are computed and one is selected, with no data-dependent branch, so the
//! loop vectorises (SSE2 by default, AVX2 or AVX-512 when the CPU has them). The
//! accuracy is tested against `f64::tanh` over the whole useful range, on every path the
//! CPU can run (`tests/kernels.rs`).

// The coefficients are Cephes' (`expf.c`, `tanhf.c`), written as published.
#![allow(clippy::excessive_precision)]

/// Beyond this, `tanh` rounds to ±1 in `f32`.
const SATURATION: f32 = 9.0;

#[inline(always)]
fn expf_positive(v: f32) -> f32 {
    // n = round(v / ln 2) by the 1.5·2^23 trick: adding MAGIC leaves n in the low bits of
    // the sum, so n is read off as an integer without a float-to-int conversion (which
    // Rust's saturating `as` would compile to scalar code).
    const MAGIC: f32 = 12_582_912.0;
    let shifted = v * std::f32::consts::LOG2_E + MAGIC;
    let n_int = shifted.to_bits() as i32 - MAGIC.to_bits() as i32;
    let n = shifted - MAGIC;
    let r = v - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let e = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    e * scale
}

#[inline(always)]
fn tanh_one(x: f32) -> f32 {
    let a = x.abs();
    // Small |x|: odd polynomial.
    let z = x * x;
    let mut p = -5.704_988_7e-3_f32;
    p = p * z + 2.063_908_9e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328_2e-1;
    let small = p * z * x + x;
    // Large |x|: 1 - 2/(e^{2|x|} + 1), with the sign of x.
    let large = (1.0 - 2.0 / (expf_positive(2.0 * a.min(SATURATION)) + 1.0)).copysign(x);
    // Written so that NaN takes the polynomial branch and stays NaN.
    if a >= 0.625 { large } else { small }
}

#[inline(always)]
fn tanh_portable(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = tanh_one(x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_avx2(x: &[f32], y: &mut [f32]) {
    // The same code, compiled for 8-wide vectors; no FMA, so results are bit-identical.
    tanh_portable(x, y);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn tanh_avx512(x: &[f32], y: &mut [f32]) {
    // The same code again, 16-wide.
    tanh_portable(x, y);
}

/// [`tanh_f32`] on the given path (for tests: every path gives the same bits); an `Err`
/// if this CPU cannot run it.
pub fn tanh_f32_on(path: super::KernelPath, x: &[f32], y: &mut [f32]) -> crate::Result<()> {
    if !path.is_available() {
        return Err(crate::Error::InvalidArgument {
            what: "tanh_f32_on".into(),
            expected: "a kernel path this CPU supports".into(),
            found: format!("{path:?}"),
        });
    }
    match path {
        // SAFETY (both): the CPU supports the path's instructions, checked above.
        #[cfg(target_arch = "x86_64")]
        super::KernelPath::Avx512 => unsafe { tanh_avx512(x, y) },
        #[cfg(target_arch = "x86_64")]
        super::KernelPath::Avx2Fma => unsafe { tanh_avx2(x, y) },
        _ => tanh_portable(x, y),
    }
    Ok(())
}

/// `y = tanh(x)` element by element (slices of equal length), within 2 ulp.
pub fn tanh_f32(x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        return unsafe { tanh_avx512(x, y) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { tanh_avx2(x, y) };
    }
    tanh_portable(x, y);
}
