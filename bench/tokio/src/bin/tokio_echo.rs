//! `tokio_echo --fd N`: the Tokio server of eddy's echo workloads (bench/suite/echo.cpp).
//!
//! It serves the echo protocol on the listening socket N it inherited, the way eddy's server
//! (bench/suite/echo_eddy.hpp) does: a multi-thread runtime with 2 worker threads runs one accept
//! task and one task per connection, which sets TCP_NODELAY, reads what arrived into a 4 KiB
//! buffer held in the task and writes all of it back, until the peer closes or the connection
//! fails. Like eddy's `block_on`, the main thread only waits: the accept loop is a task on the
//! workers. Accept failures such as EMFILE leave the connection queued; the loop says so on
//! stderr once and tries again 1 ms later. SIGTERM keeps its default action (the kernel ends the
//! process). Nothing is written to stdout.

use std::io;
use std::os::unix::io::FromRawFd;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: tokio_echo --fd N   (N: a listening TCP socket this process inherited)";

fn fail(message: &str) -> ! {
    tokio_suite::fail("tokio_echo", message)
}

fn parse_fd() -> Result<i32, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 2 || args[0] != "--fd" {
        return Err(USAGE.to_string());
    }
    match args[1].parse::<i32>() {
        Ok(fd) if fd >= 0 => Ok(fd),
        _ => Err(format!(
            "--fd '{}' is not a file descriptor\n{}",
            args[1], USAGE
        )),
    }
}

async fn connection(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Serves until the process ends; returns only the error that stopped it.
async fn accept_loop(listener: TcpListener) -> io::Error {
    let mut failures: u64 = 0;
    loop {
        let err = match listener.accept().await {
            Ok((stream, _peer)) => {
                tokio::spawn(connection(stream));
                continue;
            }
            Err(err) => err,
        };
        match err.raw_os_error() {
            Some(libc::EINTR) | Some(libc::ECONNABORTED) | Some(libc::EPROTO) => {}
            Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM) => {
                if failures == 0 {
                    eprintln!("tokio_echo: accept: {} (retrying)", err);
                }
                failures += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            _ => return err,
        }
    }
}

fn main() {
    let fd = match parse_fd() {
        Ok(fd) => fd,
        Err(message) => fail(&message),
    };
    // Safety: N is a socket this process inherited and nothing else in it uses; the listener
    // owns it from here on.
    let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    if let Err(err) = std_listener.set_nonblocking(true) {
        fail(&format!("--fd {}: {}", fd, err));
    }
    let runtime = tokio_suite::runtime("tokio_echo");
    // The accept loop never ends while the process serves: block_on returns only why it stopped.
    let message: String = runtime.block_on(async move {
        // from_std registers the socket with the runtime's reactor: it needs the runtime context.
        let listener = match TcpListener::from_std(std_listener) {
            Ok(listener) => listener,
            Err(err) => return format!("--fd {}: {}", fd, err),
        };
        match tokio::spawn(accept_loop(listener)).await {
            Ok(err) => format!("accept: {}", err),
            Err(err) => format!("the accept task ended: {}", err),
        }
    });
    fail(&message);
}
