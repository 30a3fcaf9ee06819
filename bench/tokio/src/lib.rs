//! What the crate's two programs (src/bin) share: how they fail and the runtime they run on.

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
