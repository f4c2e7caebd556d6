use clap::Parser;

#[global_allocator]
static ALLOC: crest::alloc::CacheAligned = crest::alloc::CacheAligned;

fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    keep_freed_memory();
    // A bug in crest must still end in one readable line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        eprintln!("error: internal error: {msg} (this is a bug in crest; please report it)");
    }));
    if let Err(e) = crest::cli::run(crest::cli::Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// By default glibc returns big freed buffers (a batch's activations are megabytes) to the kernel
/// and page-faults fresh zeroed pages in for the next batch: a CNN epoch spent about as long in
/// the kernel as in its own loops. Serve buffers up to glibc's 32 MiB limit from the heap and
/// never trim it, so each batch reuses the last one's memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: mallopt only tunes allocator thresholds; it is called before any other thread
    // exists, and a rejected value leaves the default in place.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, i32::MAX);
    }
}
