//! `examples/custom_layer.rs`, run as a test: a residual block defined outside crest trains on the shipped sample.

#[path = "../examples/custom_layer.rs"]
mod example;

#[test]
fn a_users_residual_block_trains_to_98_percent() {
    let accuracy = example::run("data/mnist_sample", 3).expect("the example runs");
    assert!(accuracy >= 0.98, "3 epochs reached only {accuracy}");
}
