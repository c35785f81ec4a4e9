//! Work spread over every core with rayon, reproducible whatever the number of threads.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

/// `f` of every item, on all cores, in the items' order; item `i` draws from a generator seeded by `seed` and its
/// chunk of 16, so the result depends on `seed` alone.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    seed: u64,
    f: impl Fn(&T, &mut StdRng) -> Option<R> + Sync,
) -> Vec<Option<R>> {
    items
        .par_chunks(16)
        .enumerate()
        .flat_map_iter(|(c, chunk)| {
            let mut rng = StdRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            chunk.iter().map(|item| f(item, &mut rng)).collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn results_keep_the_items_order_and_depend_on_the_seed_alone() {
        let items: Vec<u32> = (0..100).collect();
        let draw = |seed| parallel_map(&items, seed, |&i, rng| (i % 7 != 3).then(|| (i, rng.gen::<u64>())));
        let first = draw(5);
        assert_eq!(first.len(), 100);
        assert!(first.iter().enumerate().all(|(i, r)| r.is_none() == (i % 7 == 3)));
        let order: Vec<u32> = first.iter().flatten().map(|r| r.0).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "in the items' order");
        let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| draw(5));
        assert_eq!(first, single, "the same draws on one thread");
        assert_ne!(first, draw(6));
    }
}
