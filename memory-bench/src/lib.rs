//! Benchmarks and the demo binary.
