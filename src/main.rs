mod cli;

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
        // Rust ignores SIGPIPE, so output into a closed pipe (`crest train | head`) makes `println!` panic: end as a
        // program killed by SIGPIPE would, quietly with 128 + 13, since whoever read the output wanted no more.
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        eprintln!("error: internal error: {msg} (this is a bug in crest; please report it)");
    }));
    if let Err(missing) = crest::cpu::check_build_target() {
        eprintln!("error: {missing}");
        std::process::exit(1);
    }
    let cli = cli::Cli::parse();
    // The whole command runs on a worker of the thread pool, so that each parallel kernel starts by splitting work
    // there instead of queueing it from outside and putting the main thread to sleep until it is done.
    let pool = rayon::ThreadPoolBuilder::new().build().expect("a thread pool");
    if let Err(e) = pool.install(|| cli::run(cli)) {
        eprintln!("error: {}", cli::message(&e));
        std::process::exit(cli::exit_code(&e));
    }
}
