//! A Zipf sampler over ranks `0..n` (rank 0 the most frequent), for the benches'
//! synthetic data. Each bench brings its own random numbers.

pub struct Zipf(Vec<f64>);

impl Zipf {
    /// Ranks `0..n` with exponent `s`.
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for r in 1..=n {
            acc += 1.0 / (r as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf(cdf)
    }

    /// The rank drawn by `u`, a uniform number in [0, 1).
    pub fn rank(&self, u: f64) -> usize {
        self.0.partition_point(|c| *c < u).min(self.0.len() - 1)
    }
}
