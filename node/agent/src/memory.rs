//! Process-wide memory settings of the long-running node agent (`kcnode
//! init|join`): few glibc malloc arenas (glibc makes up to 8 per core, one
//! per thread that allocates concurrently, and the blocking pool's threads
//! come and go: each leaves a mostly free arena behind), a small, quickly
//! retired blocking pool, and freed heap pages handed back to the kernel
//! after bursts (many pods starting at once).

use std::time::Duration;

/// Arenas for the whole process (the main one plus one more).
const MALLOC_ARENAS: i32 = 2;
/// Threads for blocking work (image resolution, network setup, files).
const MAX_BLOCKING_THREADS: usize = 16;
/// How long an idle blocking thread is kept.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(2);
/// How often freed heap memory is returned to the kernel.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Limits glibc's malloc arenas; call before other threads start.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes allocator parameters; called while the
    // process is still single-threaded.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

/// The agent's tokio runtime: `workers` worker threads and a bounded
/// blocking pool whose idle threads go away soon.
pub fn agent_runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .enable_all()
        .build()
}

/// Returns freed heap pages to the kernel every few seconds (a task on
/// the current runtime, running as long as it does).
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim only releases free memory of the allocator.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    });
}
