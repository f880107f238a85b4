//! Hands freed heap memory back to the operating system.
//!
//! glibc's allocator gives each thread that contends for the heap an arena of its own (up to
//! eight per core) and keeps what is freed in an arena for that arena's later use. A server
//! whose worker threads each parse and drop many small JSON trees therefore holds, after a burst
//! of writes, tens of MiB of free pages per arena that no other arena can reuse. `malloc_trim`
//! returns every whole free page of every arena to the kernel (`MADV_DONTNEED`) without moving
//! anything, so calling it now and then keeps the server's RSS close to what it really holds.

use std::time::{Duration, Instant};

/// How often freed pages are handed back. A trim walks the free lists of every arena, which
/// takes a few milliseconds on a busy heap: rare enough to cost nothing measurable.
const PERIOD: Duration = Duration::from_secs(5);

/// Returns every whole free page the allocator holds to the kernel now. Returns whether any
/// memory was released (always `false` where the allocator is not glibc's).
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` only releases pages the allocator holds free; it takes each
        // arena's lock and may be called from any thread at any time.
        #[allow(unsafe_code)]
        let released = unsafe { libc::malloc_trim(0) };
        released == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Starts a thread that calls [`trim`] every [`PERIOD`] for the life of the process (glibc
/// only; other allocators return memory by themselves).
pub fn trim_periodically() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(PERIOD);
                let start = Instant::now();
                let released = trim();
                tracing::trace!(
                    released,
                    took_us = start.elapsed().as_micros() as u64,
                    "trimmed the heap"
                );
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the heap trimming thread; RSS may stay high after bursts of writes");
    }
}

#[cfg(test)]
mod tests {
    /// The resident set size of this process, from `/proc`.
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn a_trim_hands_back_free_pages_between_live_blocks() {
        // 64 MiB of small blocks, then all but one in 64 freed: the free pages lie between
        // live blocks, where glibc keeps them until a trim.
        let mut blocks: Vec<Option<Vec<u8>>> =
            (0..65_536).map(|i| Some(vec![i as u8; 1000])).collect();
        for (i, b) in blocks.iter_mut().enumerate() {
            if i % 64 != 0 {
                *b = None;
            }
        }
        let before = rss_kib();
        assert!(super::trim(), "glibc released nothing");
        let after = rss_kib();
        assert!(
            after + 32 * 1024 < before,
            "RSS {before} KiB -> {after} KiB"
        );
        // What is still allocated is intact, and the heap keeps working.
        for (i, b) in blocks.iter().enumerate() {
            if let Some(b) = b {
                assert!(b.len() == 1000 && b.iter().all(|x| *x == i as u8));
            }
        }
        let fresh = vec![7u8; 1 << 20];
        assert_eq!(fresh.iter().map(|b| *b as usize).sum::<usize>(), 7 << 20);
    }
}
