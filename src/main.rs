use clap::Parser;

#[global_allocator]
static ALLOC: crest::alloc::CacheAligned = crest::alloc::CacheAligned;

fn main() {
    crest::alloc::keep_freed_memory();
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
