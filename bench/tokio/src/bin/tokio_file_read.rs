//! `tokio_file_read --repetitions R PATH...`: Tokio's reader of eddy's file_read workload
//! (bench/suite/file_read_tokio.cpp).
//!
//! It reads the files the way eddy's reader (bench/suite/file_read_eddy.cpp) does: a multi-thread
//! runtime with 2 worker threads, built once, runs R repetitions; each spawns 64 tasks that take
//! the next path until none is left (so at most 64 files are open at once) and read it whole
//! with `tokio::fs::read`, which runs `std::fs::read` (open, size, read to the end, close) on
//! Tokio's blocking pool. The timed section starts inside `block_on`, before the first spawn,
//! and ends when every task has been joined; building the runtime is not timed.
//!
//! Prints one line per repetition on stdout: `<nanoseconds> <bytes read>`. A failed read ends
//! the program with a message on stderr and exit status 1.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

const USAGE: &str = "usage: tokio_file_read --repetitions R PATH...";
const MAX_IN_FLIGHT: usize = 64;

fn fail(message: &str) -> ! {
    tokio_suite::fail("tokio_file_read", message)
}

fn parse_args() -> Result<(usize, Vec<PathBuf>), String> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some("--repetitions".as_ref()) {
        return Err(USAGE.to_string());
    }
    let reps = match args.next().and_then(|r| r.into_string().ok()) {
        Some(r) => match r.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(format!("--repetitions '{}' is not a count\n{}", r, USAGE)),
        },
        None => return Err(USAGE.to_string()),
    };
    let paths: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if paths.is_empty() {
        return Err(USAGE.to_string());
    }
    Ok((reps, paths))
}

/// Reads the next file until none is left; the bytes it read.
async fn reader(paths: Arc<Vec<PathBuf>>, next: Arc<AtomicUsize>) -> Result<usize, String> {
    let mut total = 0;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let path = match paths.get(i) {
            Some(path) => path,
            None => return Ok(total),
        };
        match tokio::fs::read(path).await {
            Ok(contents) => total += contents.len(),
            Err(err) => return Err(format!("read {}: {}", path.display(), err)),
        }
    }
}

/// One repetition: the nanoseconds it took and the bytes read.
async fn read_all(paths: Arc<Vec<PathBuf>>) -> Result<(u128, usize), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut readers = JoinSet::new();
    for _ in 0..MAX_IN_FLIGHT {
        readers.spawn(reader(paths.clone(), next.clone()));
    }
    let mut total = 0;
    while let Some(done) = readers.join_next().await {
        match done {
            Ok(Ok(bytes)) => total += bytes,
            Ok(Err(message)) => return Err(message),
            Err(err) => return Err(format!("a reader task failed: {}", err)),
        }
    }
    Ok((start.elapsed().as_nanos(), total))
}

fn main() {
    let (reps, paths) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => fail(&message),
    };
    let paths = Arc::new(paths);
    let runtime = tokio_suite::runtime("tokio_file_read");
    for _ in 0..reps {
        match runtime.block_on(read_all(paths.clone())) {
            Ok((ns, bytes)) => println!("{} {}", ns, bytes),
            Err(message) => fail(&message),
        }
    }
}
