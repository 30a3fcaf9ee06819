//! What the crate's programs (src/bin) share: how they fail and the runtimes they run on.

use std::process;

/// Says `program: message` on stderr and ends the process with exit status 1.
pub fn fail(program: &str, message: &str) -> ! {
    eprintln!("{}: {}", program, message);
    process::exit(1);
}

/// The runtime eddy's counterparts use: multi-thread with 2 workers, and `enable_all` as
/// `#[tokio::main]` does, so the workers park on the I/O driver as eddy's do.
pub fn runtime(program: &str) -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => fail(program, &format!("cannot build the runtime: {}", err)),
    }
}

/// The runtime of eddy's single-threaded variants (`*_1w`): current-thread, every task on the
/// thread inside `block_on`, with `enable_all` like [`runtime`].
pub fn current_thread_runtime(program: &str) -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => fail(program, &format!("cannot build the runtime: {}", err)),
    }
}
