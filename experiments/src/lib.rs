//! Benchmarks, experiment specs and reports. Built in the benchmarks issue; the crate exists now so the
//! workspace has its final shape.
