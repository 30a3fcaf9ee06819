//! `tokio_runtime WORKLOAD [--repetitions R]`: Tokio's programs for eddy's runtime workloads
//! (bench/suite/<workload>.cpp), run by the suite right after eddy's figure
//! (bench/suite/tokio_program.cpp).
//!
//! Each workload is the program eddy's suite runs, written with Tokio: the same runtime (multi-
//! thread with 2 workers, or current-thread for spawn_many_1w), built once per invocation; the
//! same counts; the same timed section. eddy's `block_on` runs its awaitable as a task on the
//! workers while the calling thread sleeps, so here the body is spawned and `block_on` only
//! awaits its handle (Tokio's `block_on` alone would poll the body on the main thread, a third
//! thread next to the two workers).
//!
//! Prints one line per repetition on stdout, `<figure> [key=value ...]`, in the unit of eddy's
//! RESULT line; the suite takes the median of each. A workload with several loops (timer_churn,
//! timer_churn_armed) runs all repetitions of the first, then all of the next, as eddy's does,
//! and pairs them on the lines. sleep_many and idle_tasks measure the process's memory and run
//! one repetition per process (the suite starts one per repetition, as eddy forks one). A failed
//! check ends the program with a message on stderr and exit status 1.
//!
//! The state that tasks share is leaked into a `&'static` rather than held in an `Arc`: eddy's
//! tasks hold plain pointers, and an `Arc`'s count would add a contended atomic to each spawn.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Notify};
use tokio::task::{yield_now, JoinSet};
use tokio::time::{sleep, timeout};

const PROGRAM: &str = "tokio_runtime";
const WORKLOADS: [&str; 12] = [
    "spawn_many",
    "spawn_many_1w",
    "yield_many",
    "ping_pong",
    "chained_spawn",
    "mpsc_bounded",
    "mpsc_unbounded",
    "timer_churn",
    "timer_churn_armed",
    "sleep_many",
    "idle_tasks",
    "fan_out_fan_in",
];

fn fail(message: &str) -> ! {
    tokio_suite::fail(PROGRAM, message)
}

fn usage() -> String {
    format!(
        "usage: {} WORKLOAD [--repetitions R]\nworkloads: {}",
        PROGRAM,
        WORKLOADS.join(" ")
    )
}

fn parse_args() -> Result<(String, usize), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workload = match args.first() {
        Some(w) if WORKLOADS.contains(&w.as_str()) => w.clone(),
        Some(w) => return Err(format!("unknown workload '{}'\n{}", w, usage())),
        None => return Err(usage()),
    };
    match &args[1..] {
        [] => Ok((workload, 5)),
        [flag, r] if flag == "--repetitions" => match r.parse::<usize>() {
            Ok(n) if n >= 1 => Ok((workload, n)),
            _ => Err(format!("--repetitions '{}' is not a count\n{}", r, usage())),
        },
        _ => Err(usage()),
    }
}

/// Runs `body` as a task on `rt`'s workers and returns its output (see the module doc).
fn on_workers<F>(rt: &Runtime, body: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match rt.block_on(async { tokio::spawn(body).await }) {
        Ok(v) => v,
        Err(err) => fail(&format!("the measured task failed: {}", err)),
    }
}

/// Awaits every handle; a task that panicked ends the program.
async fn join_all<T>(handles: Vec<tokio::task::JoinHandle<T>>) {
    for h in handles {
        if let Err(err) = h.await {
            fail(&format!("a task failed: {}", err));
        }
    }
}

fn elapsed_ns(start: Instant) -> f64 {
    start.elapsed().as_nanos() as f64
}

/// `repetitions` runs of `once`, in order.
fn repeat(repetitions: usize, mut once: impl FnMut() -> f64) -> Vec<f64> {
    (0..repetitions).map(|_| once()).collect()
}

fn print_figures(figures: &[f64]) {
    for f in figures {
        println!("{:.3}", f);
    }
}

fn print_pairs(figures: &[f64], key: &str, extra: &[f64]) {
    for (f, e) in figures.iter().zip(extra) {
        println!("{:.3} {}={:.3}", f, key, e);
    }
}

/// Leaks `v`: shared state that outlives the tasks, without reference counting.
fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

// ---- spawn_many, spawn_many_1w ---------------------------------------------------------------

const SPAWN_TASKS: u64 = 100_000;

async fn spawn_and_join(counter: &'static AtomicU64) -> f64 {
    let mut handles = Vec::with_capacity(SPAWN_TASKS as usize);
    let start = Instant::now();
    for _ in 0..SPAWN_TASKS {
        handles.push(tokio::spawn(async move {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
    }
    join_all(handles).await;
    elapsed_ns(start)
}

fn spawn_many(rt: &Runtime, repetitions: usize) {
    let ns = repeat(repetitions, || {
        let counter = leak(AtomicU64::new(0));
        let ns = on_workers(rt, spawn_and_join(counter));
        if counter.load(Ordering::Relaxed) != SPAWN_TASKS {
            fail("spawn_many: lost tasks");
        }
        ns / SPAWN_TASKS as f64
    });
    print_figures(&ns);
}

// ---- yield_many ------------------------------------------------------------------------------

const YIELD_TASKS: usize = 200;
const YIELDS: usize = 1_000;

async fn yield_all() -> f64 {
    let mut handles = Vec::with_capacity(YIELD_TASKS);
    let start = Instant::now();
    for _ in 0..YIELD_TASKS {
        handles.push(tokio::spawn(async {
            for _ in 0..YIELDS {
                yield_now().await;
            }
        }));
    }
    join_all(handles).await;
    elapsed_ns(start)
}

fn yield_many(rt: &Runtime, repetitions: usize) {
    let ns = repeat(repetitions, || {
        on_workers(rt, yield_all()) / (YIELD_TASKS * YIELDS) as f64
    });
    print_figures(&ns);
}

// ---- ping_pong -------------------------------------------------------------------------------

const ROUND_TRIPS: u64 = 100_000;

async fn ping() -> f64 {
    let (ping_tx, mut ping_rx) = mpsc::channel::<u64>(1);
    let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(1);
    let pong = tokio::spawn(async move {
        while let Some(v) = ping_rx.recv().await {
            if pong_tx.send(v + 1).await.is_err() {
                break;
            }
        }
    });
    let mut token = 0;
    let start = Instant::now();
    for _ in 0..ROUND_TRIPS {
        if ping_tx.send(token).await.is_err() {
            fail("ping_pong: send failed");
        }
        token = match pong_rx.recv().await {
            Some(v) => v,
            None => fail("ping_pong: channel closed"),
        };
    }
    let ns = elapsed_ns(start);
    if token != ROUND_TRIPS {
        fail("ping_pong: lost a token");
    }
    drop(ping_tx);
    join_all(vec![pong]).await;
    ns
}

fn ping_pong(rt: &Runtime, repetitions: usize) {
    let ns = repeat(repetitions, || on_workers(rt, ping()) / ROUND_TRIPS as f64);
    print_figures(&ns);
}

// ---- chained_spawn ---------------------------------------------------------------------------

const DEPTH: u64 = 100_000;

/// The completion signal the main thread waits on.
struct DoneSignal {
    done: Mutex<bool>,
    cv: Condvar,
}

impl DoneSignal {
    fn set(&self) {
        *self.done.lock().unwrap() = true;
        self.cv.notify_one();
    }

    fn wait(&self) {
        let mut done = self.done.lock().unwrap();
        while !*done {
            done = self.cv.wait(done).unwrap();
        }
    }
}

/// Task i of the chain: spawns task i + 1 (detached) and finishes. A hand-written future rather
/// than an `async fn`: an async fn that spawns itself needs its own future type to be `Send`
/// while that type is being inferred, a cycle rustc rejects.
struct Link {
    remaining: u64,
    done: &'static DoneSignal,
}

impl Future for Link {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.remaining == 0 {
            self.done.set();
        } else {
            drop(tokio::spawn(Link {
                remaining: self.remaining - 1,
                done: self.done,
            }));
        }
        Poll::Ready(())
    }
}

fn chained_spawn(rt: &Runtime, repetitions: usize) {
    let handle = rt.handle();
    let ns = repeat(repetitions, || {
        let done = leak(DoneSignal {
            done: Mutex::new(false),
            cv: Condvar::new(),
        });
        let start = Instant::now();
        drop(handle.spawn(Link {
            remaining: DEPTH,
            done,
        }));
        done.wait();
        elapsed_ns(start) / DEPTH as f64
    });
    print_figures(&ns);
}

// ---- mpsc_bounded, mpsc_unbounded ------------------------------------------------------------

const PRODUCERS: u64 = 4;
const PER_PRODUCER: u64 = 250_000;
const MESSAGES: u64 = PRODUCERS * PER_PRODUCER;
const CAPACITY: usize = 1024;

fn check_exchange(received: u64, sum: u64) {
    if received != MESSAGES || sum != PRODUCERS * (PER_PRODUCER * (PER_PRODUCER - 1) / 2) {
        fail("mpsc: lost messages");
    }
}

/// The consumer side of both exchanges (the receivers share no trait): receives until every
/// sender is gone, takes the time, joins the producers and checks what arrived.
macro_rules! consume_all {
    ($rx:ident, $start:ident, $handles:ident) => {{
        let (mut received, mut sum) = (0, 0);
        while let Some(v) = $rx.recv().await {
            received += 1;
            sum += v;
        }
        let ns = elapsed_ns($start);
        join_all($handles).await;
        check_exchange(received, sum);
        ns
    }};
}

async fn exchange_bounded(tx: mpsc::Sender<u64>, mut rx: mpsc::Receiver<u64>) -> f64 {
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..PRODUCERS {
        let tx = tx.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..PER_PRODUCER {
                if tx.send(i).await.is_err() {
                    fail("mpsc_bounded: send failed");
                }
            }
        }));
    }
    drop(tx);
    consume_all!(rx, start, handles)
}

async fn exchange_unbounded(
    tx: mpsc::UnboundedSender<u64>,
    mut rx: mpsc::UnboundedReceiver<u64>,
) -> f64 {
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..PRODUCERS {
        let tx = tx.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..PER_PRODUCER {
                if tx.send(i).is_err() {
                    fail("mpsc_unbounded: send failed");
                }
            }
        }));
    }
    drop(tx);
    consume_all!(rx, start, handles)
}

fn mpsc_bounded(rt: &Runtime, repetitions: usize) {
    let ns = repeat(repetitions, || {
        let (tx, rx) = mpsc::channel(CAPACITY);
        on_workers(rt, exchange_bounded(tx, rx)) / MESSAGES as f64
    });
    print_figures(&ns);
}

fn mpsc_unbounded(rt: &Runtime, repetitions: usize) {
    let ns = repeat(repetitions, || {
        let (tx, rx) = mpsc::unbounded_channel();
        on_workers(rt, exchange_unbounded(tx, rx)) / MESSAGES as f64
    });
    print_figures(&ns);
}

// ---- timer_churn, timer_churn_armed ----------------------------------------------------------

const OPS: u32 = 1_000_000;
const SECOND: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
enum Churn {
    /// timeout(1 s) around an already-ready future: Tokio polls the inner future first and
    /// registers the timer only when it is pending, so this never touches the wheel.
    Ready,
    /// The same around an `async fn` that returns without suspending (eddy's `task=` figure;
    /// a Rust async fn is not a separate allocation, an eddy task is a coroutine frame).
    Task,
    /// timeout(1 s, yield_now()): the inner future is pending once, so the timer is inserted
    /// and then cancelled when the future wins.
    Armed,
    /// A bare yield_now(): the part of `Armed` that is not the timer.
    YieldOnly,
    /// sleep(1 s) polled once (registered) and dropped (cancelled): a timer insert and cancel
    /// without the timeout combinator.
    SleepOnce,
}

async fn ready_task(v: u32) -> u32 {
    v
}

/// Polls the future it holds once and completes, saying whether that poll was ready.
struct PollOnce<F>(F);

impl<F: Future + Unpin> Future for PollOnce<F> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        Poll::Ready(Pin::new(&mut self.0).poll(cx).is_ready())
    }
}

async fn churn(kind: Churn) -> f64 {
    let mut ok: u32 = 0;
    let start = Instant::now();
    for _ in 0..OPS {
        match kind {
            Churn::Ready => {
                if timeout(SECOND, std::future::ready(())).await.is_ok() {
                    ok += 1;
                }
            }
            Churn::Task => {
                if let Ok(v) = timeout(SECOND, ready_task(1)).await {
                    ok += v;
                }
            }
            Churn::Armed => {
                if timeout(SECOND, yield_now()).await.is_ok() {
                    ok += 1;
                }
            }
            Churn::YieldOnly => {
                yield_now().await;
                ok += 1;
            }
            Churn::SleepOnce => {
                let delay = sleep(SECOND);
                tokio::pin!(delay);
                if !PollOnce(delay.as_mut()).await {
                    ok += 1;
                }
            }
        }
    }
    let ns = elapsed_ns(start);
    if ok != OPS {
        fail("timer_churn: an operation timed out");
    }
    ns / OPS as f64
}

fn churn_figures(rt: &Runtime, repetitions: usize, kind: Churn) -> Vec<f64> {
    repeat(repetitions, || on_workers(rt, churn(kind)))
}

fn timer_churn(rt: &Runtime, repetitions: usize) {
    let ready = churn_figures(rt, repetitions, Churn::Ready);
    let task = churn_figures(rt, repetitions, Churn::Task);
    print_pairs(&ready, "task", &task);
}

/// The figure is a bare timer insert and cancel (`SleepOnce`), the one Tokio's published figure
/// measures: Tokio 1.24's yield_now() defers its wake until the worker has polled its driver, so
/// for a lone task every yield costs an epoll_wait, which `timeout_yield=` (eddy's very loop)
/// and `yield=` show apart.
fn timer_churn_armed(rt: &Runtime, repetitions: usize) {
    let sleeps = churn_figures(rt, repetitions, Churn::SleepOnce);
    let armed = churn_figures(rt, repetitions, Churn::Armed);
    let yields = churn_figures(rt, repetitions, Churn::YieldOnly);
    for ((s, a), y) in sleeps.iter().zip(&armed).zip(&yields) {
        println!("{:.3} timeout_yield={:.3} yield={:.3}", s, a, y);
    }
}

// ---- sleep_many ------------------------------------------------------------------------------

const SLEEP_TASKS: usize = 100_000;

/// std::mt19937, so that the sleeps are the very durations eddy's program draws.
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Mt19937 {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index == 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.state[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.state[i] = v;
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// A value uniform in [lo, hi] drawn the way libstdc++'s std::uniform_int_distribution draws it
/// from a 32-bit generator (Lemire's multiply-and-shift, rejecting the biased low products).
fn uniform(rng: &mut Mt19937, lo: u32, hi: u32) -> u32 {
    let range = hi - lo + 1;
    let mut product = u64::from(rng.next_u32()) * u64::from(range);
    if (product as u32) < range {
        let threshold = range.wrapping_neg() % range;
        while (product as u32) < threshold {
            product = u64::from(rng.next_u32()) * u64::from(range);
        }
    }
    lo + (product >> 32) as u32
}

async fn sleep_all() -> f64 {
    let mut rng = Mt19937::new(42);
    let mut handles = Vec::with_capacity(SLEEP_TASKS);
    let start = Instant::now();
    for _ in 0..SLEEP_TASKS {
        let ms = uniform(&mut rng, 1, 1000);
        handles.push(tokio::spawn(sleep(Duration::from_millis(u64::from(ms)))));
    }
    join_all(handles).await;
    elapsed_ns(start) / 1e6
}

/// A field of /proc/self/status in KiB ("VmRSS", "VmHWM").
fn status_kib(field: &str) -> u64 {
    let status = match std::fs::read_to_string("/proc/self/status") {
        Ok(s) => s,
        Err(err) => fail(&format!("cannot read /proc/self/status: {}", err)),
    };
    let prefix = format!("{}:", field);
    status
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| fail(&format!("no {} in /proc/self/status", field)))
}

fn sleep_many(rt: &Runtime) {
    let wall_ms = on_workers(rt, sleep_all());
    let peak_mib = status_kib("VmHWM") as f64 / 1024.0;
    println!("{:.3} peak_rss_mib={:.3}", wall_ms - 1000.0, peak_mib);
}

// ---- idle_tasks ------------------------------------------------------------------------------

const IDLE_TASKS: u64 = 1_000_000;

async fn idle_task(gate: &'static Notify, waiting: &'static AtomicU64, done: &'static AtomicU64) {
    // Created before the count goes up: a Notified future made before notify_waiters() completes
    // even when it is first polled after it, so the gate cannot be missed.
    let opened = gate.notified();
    waiting.fetch_add(1, Ordering::Relaxed);
    opened.await;
    done.fetch_add(1, Ordering::Relaxed);
}

fn idle_tasks(rt: &Runtime) {
    let handle = rt.handle();
    let gate = leak(Notify::new());
    let waiting = leak(AtomicU64::new(0));
    let done = leak(AtomicU64::new(0));
    on_workers(rt, yield_now()); // workers up and warm
    let before_kib = status_kib("VmRSS");
    for _ in 0..IDLE_TASKS {
        drop(handle.spawn(idle_task(gate, waiting, done)));
    }
    while waiting.load(Ordering::Relaxed) < IDLE_TASKS {
        std::thread::yield_now();
    }
    let after_kib = status_kib("VmRSS");
    gate.notify_waiters();
    while done.load(Ordering::Relaxed) < IDLE_TASKS {
        std::thread::yield_now();
    }
    let bytes = (after_kib as f64 - before_kib as f64) * 1024.0 / IDLE_TASKS as f64;
    println!("{:.3}", bytes);
}

// ---- fan_out_fan_in --------------------------------------------------------------------------

const FAN_TASKS: u64 = 10_000;

async fn fan_out_fan_in_once() -> f64 {
    let start = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..FAN_TASKS {
        set.spawn(async move {
            yield_now().await;
            i
        });
    }
    let mut sum = 0;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(v) => sum += v,
            Err(err) => fail(&format!("fan_out_fan_in: a task failed: {}", err)),
        }
    }
    let ns = elapsed_ns(start);
    if sum != FAN_TASKS * (FAN_TASKS - 1) / 2 {
        fail("fan_out_fan_in: lost results");
    }
    ns
}

fn fan_out_fan_in(rt: &Runtime, repetitions: usize) {
    let ns = repeat(repetitions, || {
        on_workers(rt, fan_out_fan_in_once()) / FAN_TASKS as f64
    });
    print_figures(&ns);
}

// ---- main ------------------------------------------------------------------------------------

fn main() {
    let (workload, repetitions) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => fail(&message),
    };
    let per_process = workload == "sleep_many" || workload == "idle_tasks";
    if per_process && repetitions != 1 {
        fail(&format!(
            "{} measures this process's memory: run one repetition per process (--repetitions 1)",
            workload
        ));
    }
    let rt = if workload == "spawn_many_1w" {
        tokio_suite::current_thread_runtime(PROGRAM)
    } else {
        tokio_suite::runtime(PROGRAM)
    };
    match workload.as_str() {
        "spawn_many" | "spawn_many_1w" => spawn_many(&rt, repetitions),
        "yield_many" => yield_many(&rt, repetitions),
        "ping_pong" => ping_pong(&rt, repetitions),
        "chained_spawn" => chained_spawn(&rt, repetitions),
        "mpsc_bounded" => mpsc_bounded(&rt, repetitions),
        "mpsc_unbounded" => mpsc_unbounded(&rt, repetitions),
        "timer_churn" => timer_churn(&rt, repetitions),
        "timer_churn_armed" => timer_churn_armed(&rt, repetitions),
        "sleep_many" => sleep_many(&rt),
        "idle_tasks" => idle_tasks(&rt),
        "fan_out_fan_in" => fan_out_fan_in(&rt, repetitions),
        _ => unreachable!("parse_args accepts only WORKLOADS"),
    }
}
