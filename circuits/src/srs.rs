//! Fast KZG setup from a known secret: the same parameters as halo2's `ParamsKZG::setup`, made
//! in a fraction of the time.
//!
//! halo2's `setup` draws the secret `s` and then, per point, runs a generic scalar
//! multiplication for `g[i] = s^i·G1` and another, after one field inversion, for the Lagrange
//! basis `g_lagrange[i] = (s^n − 1)/n · ω^i/(s − ω^i) · G1`. Here:
//!
//! - the scalars are computed in batches: powers by repeated multiplication from a `pow_vartime`
//!   start per batch, the Lagrange denominators inverted together (Montgomery's trick);
//! - every point is a multiple of the same generator, so the multiplications use a fixed-base
//!   table (`FixedBaseTable`): 12-bit signed digits, one mixed addition per digit and no
//!   doublings;
//! - batches run in parallel (halo2's `parallelize`) and are normalised to affine with one
//!   inversion per batch, as halo2 does.
//!
//! Affine points have one encoding, so the parameters serialise (`ParamsKZG::write`) to the
//! same bytes as halo2's `setup` given the same randomness; the tests check it.
//!
//! **Unsafe** for anything but tests: whoever knows the randomness knows the secret.

use std::time::Instant;

use halo2_base::halo2_proofs::{
    arithmetic::parallelize,
    halo2curves::{
        bn256::{Bn256, Fr, G1Affine, G2Affine, G1},
        ff::{BatchInvert, Field, PrimeField},
        group::{prime::PrimeCurveAffine, Curve, Group},
    },
    poly::kzg::commitment::ParamsKZG,
};
use rand::{RngCore, SeedableRng};
use tracing::info;

use crate::progress::Progress;

/// Bits per digit of the fixed-base table: 22 windows of 2048 points (2.8 MB). Measured on one
/// thread at k = 17: 12 to 16 bits within noise of each other (16 needs 16 additions per point
/// instead of 22, but a 32 MB table that misses the caches and takes 0.4 s to build), 8 bits
/// about 30 % slower.
const WINDOW_BITS: u32 = 12;

/// Points per batch: scalars, projective points and one batch inversion each.
const BATCH: usize = 1 << 12;

/// The KZG parameters for `2^k` rows that `ParamsKZG::<Bn256>::setup(k, rng)` makes: the
/// secret is the first field element drawn from `rng`, as there.
///
/// # Panics
/// If `k` exceeds the two-adicity of `Fr` (as halo2 does), or in the negligible case that the
/// secret is an `n`-th root of unity (halo2 panics there too).
pub fn setup(k: u32, rng: impl RngCore) -> ParamsKZG<Bn256> {
    assert!(
        k <= Fr::S,
        "k = {k} exceeds the two-adicity {} of Fr",
        Fr::S
    );
    let n = 1usize << k;
    let s = Fr::random(rng);
    let started = Instant::now();
    // Counted in points: the monomial basis, then the Lagrange basis.
    let progress = Progress::start(
        format!("SRS for k = {k} (2 × {n} points)"),
        Some(2 * n as u64),
        None,
    );
    let table = FixedBaseTable::new(G1::generator(), WINDOW_BITS);

    let g = fixed_base_points(&table, n, &progress, |start, scalars| {
        let mut power = s.pow_vartime([start as u64]);
        for scalar in scalars {
            *scalar = power;
            power *= s;
        }
    });
    info!(
        k,
        seconds = started.elapsed().as_secs_f64(),
        "SRS: monomial basis done"
    );

    // ω and the multiplier exactly as halo2 derives them.
    let mut root = Fr::ROOT_OF_UNITY_INV.invert().unwrap();
    for _ in k..Fr::S {
        root = root.square();
    }
    let n_inv = Fr::from(n as u64).invert().unwrap();
    let multiplier = (s.pow_vartime([n as u64]) - Fr::ONE) * n_inv;
    let g_lagrange = fixed_base_points(&table, n, &progress, |start, scalars| {
        // scalar_i = multiplier·ω^i / (s − ω^i): denominators first, inverted together.
        let mut root_pow = root.pow_vartime([start as u64]);
        for scalar in scalars.iter_mut() {
            *scalar = s - root_pow;
            root_pow *= root;
        }
        scalars.iter_mut().batch_invert();
        assert!(
            scalars.iter().all(|x| !bool::from(x.is_zero())),
            "the SRS secret is an n-th root of unity"
        );
        let mut root_pow = root.pow_vartime([start as u64]);
        for scalar in scalars {
            *scalar *= multiplier * root_pow;
            root_pow *= root;
        }
    });
    info!(
        k,
        seconds = started.elapsed().as_secs_f64(),
        "SRS: Lagrange basis done"
    );

    progress.finish();

    let g2 = G2Affine::generator();
    let s_g2 = (g2 * s).to_affine();
    // `from_parts` takes a receiver it does not read; the fields are private otherwise. A
    // k = 0 setup (one point) is the cheapest receiver there is.
    let receiver = ParamsKZG::<Bn256>::setup(0, rand_chacha::ChaCha20Rng::from_seed([0; 32]));
    receiver.from_parts(k, g, Some(g_lagrange), g2, s_g2)
}

/// `n` affine multiples of the table's base: `fill(start, scalars)` writes the scalars of
/// points `start..start + scalars.len()`. Each batch done counts on `progress`.
fn fixed_base_points(
    table: &FixedBaseTable,
    n: usize,
    progress: &Progress,
    fill: impl Fn(usize, &mut [Fr]) + Send + Sync + Clone,
) -> Vec<G1Affine> {
    let mut out = vec![G1Affine::identity(); n];
    parallelize(&mut out, |out, start| {
        let mut scalars = vec![Fr::ZERO; BATCH.min(out.len())];
        let mut points = vec![G1::identity(); scalars.len()];
        for (i, out) in out.chunks_mut(BATCH).enumerate() {
            let (scalars, points) = (&mut scalars[..out.len()], &mut points[..out.len()]);
            fill(start + i * BATCH, scalars);
            for (point, scalar) in points.iter_mut().zip(scalars.iter()) {
                *point = table.mul(scalar);
            }
            G1::batch_normalize(points, out);
            progress.inc(out.len() as u64);
        }
    });
    out
}

/// Multiples of one point for fixed-base scalar multiplication with signed `w`-bit digits:
/// window `j` holds `d·2^(w·j)·P` for `d` in `1..=2^(w−1)`, in affine form.
///
/// A scalar is recoded into digits `d_j` in `−2^(w−1)+1..=2^(w−1)` with `Σ d_j·2^(w·j)` equal
/// to it; its multiple is then the sum of one table entry (negated for a negative digit) per
/// non-zero digit.
#[derive(Debug)]
struct FixedBaseTable {
    window_bits: u32,
    windows: Vec<Vec<G1Affine>>,
}

impl FixedBaseTable {
    /// The table of `base` for `window_bits`-bit digits (2 to 16).
    fn new(base: G1, window_bits: u32) -> Self {
        assert!(
            (2..=16).contains(&window_bits),
            "window of {window_bits} bits, expected 2 to 16"
        );
        // Enough windows that the top one never carries: Fr < 2^254, and w·count ≥ 255 leaves
        // the top window below 2^(w−1) before its carry-in.
        let count = 255usize.div_ceil(window_bits as usize);
        let half = 1usize << (window_bits - 1);
        let mut bases = Vec::with_capacity(count);
        let mut window_base = base;
        for _ in 0..count {
            bases.push(window_base);
            for _ in 0..window_bits {
                window_base = window_base.double();
            }
        }
        let mut windows: Vec<Vec<G1Affine>> = bases.iter().map(|_| Vec::new()).collect();
        parallelize(&mut windows, |windows, start| {
            for (window, base) in windows.iter_mut().zip(&bases[start..]) {
                let mut multiples = Vec::with_capacity(half);
                let mut multiple = *base;
                for _ in 0..half {
                    multiples.push(multiple);
                    multiple += base;
                }
                *window = vec![G1Affine::identity(); half];
                G1::batch_normalize(&multiples, window);
            }
        });
        Self {
            window_bits,
            windows,
        }
    }

    /// `scalar` times the base.
    fn mul(&self, scalar: &Fr) -> G1 {
        let limbs: [u64; 4] = (*scalar).into();
        let w = self.window_bits as usize;
        let radix = 1i64 << w;
        let half = radix / 2;
        let mut carry = 0i64;
        let mut acc = G1::identity();
        for (j, window) in self.windows.iter().enumerate() {
            let mut digit = bits(&limbs, j * w, w) as i64 + carry;
            carry = i64::from(digit > half);
            digit -= carry * radix;
            match digit {
                0 => {}
                d if d > 0 => acc += &window[d as usize - 1],
                d => acc += &-window[(-d) as usize - 1],
            }
        }
        debug_assert_eq!(carry, 0, "the top window does not carry");
        acc
    }
}

/// Bits `start..start + len` of the little-endian `limbs` (`len` ≤ 64; zero past the end).
fn bits(limbs: &[u64; 4], start: usize, len: usize) -> u64 {
    let (limb, shift) = (start / 64, start % 64);
    let Some(low) = limbs.get(limb) else {
        return 0;
    };
    let mut value = low >> shift;
    if shift > 0 && shift + len > 64 {
        if let Some(high) = limbs.get(limb + 1) {
            value |= high << (64 - shift);
        }
    }
    value & (u64::MAX >> (64 - len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_multiples_match_scalar_multiplication_for_every_width() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([3; 32]);
        let base = G1::generator() * Fr::from(7);
        let mut scalars: Vec<Fr> = (0..8).map(|_| Fr::random(&mut rng)).collect();
        scalars.extend([
            Fr::ZERO,
            Fr::ONE,
            -Fr::ONE,
            Fr::from(u64::MAX),
            -Fr::from(2),
        ]);
        for w in [2, 3, 7, 8, 11, 12, 13, 16] {
            let table = FixedBaseTable::new(base, w);
            for scalar in &scalars {
                assert_eq!(
                    table.mul(scalar).to_affine(),
                    (base * scalar).to_affine(),
                    "w = {w}"
                );
            }
        }
    }

    #[test]
    fn fixed_base_points_fill_every_batch_of_every_thread_at_its_offset() {
        // Several batches per thread and a ragged last one, whatever the thread count.
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let n = 2 * BATCH * threads + 5;
        let table = FixedBaseTable::new(G1::generator(), 8);
        let progress = Progress::start("test points", Some(n as u64), None);
        let points = fixed_base_points(&table, n, &progress, |start, scalars| {
            for (i, scalar) in scalars.iter_mut().enumerate() {
                *scalar = Fr::from((start + i) as u64);
            }
        });
        assert_eq!(
            progress.task().done(),
            n as u64,
            "every point is counted once"
        );
        let mut expected = vec![G1::identity(); n];
        for i in 1..n {
            expected[i] = expected[i - 1] + G1::generator();
        }
        let mut expected_affine = vec![G1Affine::identity(); n];
        G1::batch_normalize(&expected, &mut expected_affine);
        assert!(points == expected_affine);
    }

    #[test]
    fn bits_cross_limb_boundaries() {
        let limbs = [u64::MAX, 0, 0b101, 0];
        assert_eq!(bits(&limbs, 60, 8), 0b1111);
        assert_eq!(bits(&limbs, 126, 4), 0b0100);
        assert_eq!(bits(&limbs, 128, 64), 0b101);
        assert_eq!(bits(&limbs, 250, 12), 0);
        assert_eq!(bits(&limbs, 256, 12), 0);
    }
}
