//! The CPU features a build of crest was compiled to assume.
//!
//! The kernels pick AVX-512 at run time, after detecting it. The rest of the code assumes only what the build
//! target says: baseline x86-64 when crest is a dependency of another crate, and x86-64-v3 (AVX2, FMA) for this
//! repository's own builds (`.cargo/config.toml`), which let the compiler vectorise crest's plain loops 8 wide.
//! A binary built that way would stop with an illegal instruction on an older CPU; [`check_build_target`] turns
//! that into an error a program can print before anything else runs.

use crate::{Error, Result};

/// `Ok` if this CPU has every feature the build assumes; otherwise the missing ones, named.
pub fn check_build_target() -> Result<()> {
    let missing = missing_features();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::UnsupportedCpu { missing })
    }
}

#[cfg(target_arch = "x86_64")]
fn missing_features() -> Vec<&'static str> {
    let mut missing = Vec::new();
    macro_rules! check {
        ($($feature:tt),*) => {$(
            if cfg!(target_feature = $feature) && !std::arch::is_x86_feature_detected!($feature) {
                missing.push($feature);
            }
        )*};
    }
    check!(
        "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "lzcnt", "movbe"
    );
    check!("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl");
    missing
}

#[cfg(not(target_arch = "x86_64"))]
fn missing_features() -> Vec<&'static str> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_machine_running_the_tests_has_what_they_were_built_for() {
        assert!(super::check_build_target().is_ok());
    }
}
