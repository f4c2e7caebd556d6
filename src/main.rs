mod cli;

use clap::Parser;
use std::io::Write;

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
    let world = cli::world(&cli).unwrap_or_else(|e| fail(&e));
    // The whole command runs on a worker of the thread pool, so that each parallel kernel starts by splitting work
    // there instead of queueing it from outside and putting the main thread to sleep until it is done.
    let pool = rayon::ThreadPoolBuilder::new().build().expect("a thread pool");
    if let Err(e) = pool.install(|| cli::run(cli, &world)) {
        // Under `mpirun`, the line is out before MPI is left: a rank that leaves first may have the job ended.
        let code = report(&e);
        cli::world::exit(world, &e, code);
    }
}

/// Prints the error's line, in one write so that the lines of ranks stopping together under `mpirun` don't
/// interleave mid-line; returns the exit status.
fn report(e: &crest::Error) -> i32 {
    let line = format!("error: {}\n", cli::message(e));
    let _ = std::io::stderr().write_all(line.as_bytes());
    cli::exit_code(e)
}

fn fail(e: &crest::Error) -> ! {
    std::process::exit(report(e))
}
