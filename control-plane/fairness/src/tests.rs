use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;

fn unlimited() -> Limits {
    Limits {
        requests_per_second: 0,
        ..Limits::default()
    }
}

fn fairness(total_seats: usize, queue_length: usize) -> Fairness {
    Fairness::new(Config {
        total_seats,
        queue_length,
        queue_wait: Duration::from_secs(60),
        heavy_reads: 4,
        defaults: unlimited(),
    })
}

/// Lets spawned tasks run until they wait again.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn spawn_admit(f: &Fairness, cluster: &'static str) -> JoinHandle<Result<Seat, Rejected>> {
    let f = f.clone();
    tokio::spawn(async move { f.admit(cluster, Class::ReadOnly).await })
}

async fn admit_now(f: &Fairness, cluster: &str) -> Seat {
    f.admit(cluster, Class::Mutating).await.expect("admitted")
}

fn counts(f: &Fairness, cluster: &str) -> (usize, usize) {
    let stats = f.stats();
    stats
        .clusters
        .get(cluster)
        .map_or((0, 0), |c| (c.in_flight, c.queued))
}

#[tokio::test(start_paused = true)]
async fn over_the_rate_requests_wait_their_turn_then_are_refused_with_retry_after() {
    // Queues of 3: three requests over the rate may wait for their tokens.
    let f = fairness(10, 3);
    f.set_limits(
        "acme:prod",
        Limits {
            requests_per_second: 10,
            burst: 2,
            ..Limits::default()
        },
    );
    let start = Instant::now();
    drop(admit_now(&f, "acme:prod").await);
    drop(admit_now(&f, "acme:prod").await);
    assert_eq!(start.elapsed(), Duration::ZERO, "the burst passes at once");
    // The next three are spaced at the rate: admitted 100, 200 and 300ms from now.
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move {
                f.admit("acme:prod", Class::Mutating)
                    .await
                    .map(|_| Instant::now())
            })
        })
        .collect();
    settle().await;
    // The queue is full: refused at once, told when a token is free (after the three, 400ms).
    let err = f.admit("acme:prod", Class::ReadOnly).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "refusals do not wait");
    assert_eq!(err.reason, Reason::RateLimited);
    assert_eq!(err.retry_after, Duration::from_secs(1));
    assert_eq!(
        err.message,
        "cluster acme:prod is limited to 10 requests per second (burst 2); retry after 1s"
    );
    assert_eq!(err.to_string(), err.message);
    assert_eq!(err.reason.status_code(), 429);
    // Another cluster has its own bucket.
    drop(admit_now(&f, "other").await);

    let mut admitted = Vec::new();
    for w in waiting {
        admitted.push(w.await.unwrap().expect("admitted after waiting") - start);
    }
    admitted.sort();
    assert_eq!(
        admitted,
        [100, 200, 300].map(Duration::from_millis).to_vec()
    );
    // Once the loan is repaid the bucket refills as before.
    tokio::time::advance(Duration::from_millis(100)).await;
    let t = Instant::now();
    drop(admit_now(&f, "acme:prod").await);
    assert_eq!(t.elapsed(), Duration::ZERO);

    let stats = f.stats();
    assert_eq!(
        stats.clusters["acme:prod"].rejected,
        BTreeMap::from([(Reason::RateLimited, 1)])
    );
    assert_eq!(stats.clusters["acme:prod"].paced, 3);
    assert!(stats.clusters["other"].rejected.is_empty());
}

#[test]
fn retry_after_is_whole_seconds_and_at_least_one() {
    assert_eq!(whole_seconds(Duration::ZERO), Duration::from_secs(1));
    assert_eq!(
        whole_seconds(Duration::from_millis(10)),
        Duration::from_secs(1)
    );
    assert_eq!(
        whole_seconds(Duration::from_secs(1)),
        Duration::from_secs(1)
    );
    assert_eq!(
        whole_seconds(Duration::from_millis(1200)),
        Duration::from_secs(2)
    );
}

#[tokio::test(start_paused = true)]
async fn exempt_requests_skip_rate_and_seats() {
    let f = Fairness::new(Config {
        total_seats: 0,
        queue_length: 0,
        queue_wait: Duration::from_secs(1),
        heavy_reads: 4,
        defaults: Limits {
            requests_per_second: 1,
            burst: 1,
            ..Limits::default()
        },
    });
    let seats: Vec<Seat> = futures_all(&f, 100, Class::Exempt).await;
    assert_eq!(seats.len(), 100);
    assert_eq!(f.stats().in_flight, 0);
    // Other classes are limited: no seats at all and no queue.
    let err = f.admit("a", Class::ReadOnly).await.unwrap_err();
    assert_eq!(err.reason, Reason::QueueFull);
}

async fn futures_all(f: &Fairness, n: usize, class: Class) -> Vec<Seat> {
    let mut seats = Vec::new();
    for _ in 0..n {
        seats.push(f.admit("a", class).await.expect("exempt"));
    }
    seats
}

#[tokio::test(start_paused = true)]
async fn seats_are_released_on_drop() {
    let f = fairness(2, 10);
    let one = admit_now(&f, "a").await;
    let two = admit_now(&f, "b").await;
    assert_eq!(f.stats().in_flight, 2);
    assert_eq!(counts(&f, "a"), (1, 0));
    drop(one);
    assert_eq!(f.stats().in_flight, 1);
    assert_eq!(counts(&f, "a"), (0, 0));
    drop(two);
    let stats = f.stats();
    assert_eq!((stats.in_flight, stats.queued), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_light_cluster_is_served_before_a_flooding_one() {
    let f = fairness(4, 500);
    // Alone, A may use every seat.
    let mut a_seats = Vec::new();
    for _ in 0..4 {
        a_seats.push(admit_now(&f, "a").await);
    }
    let a_waiting: Vec<_> = (0..100).map(|_| spawn_admit(&f, "a")).collect();
    settle().await;
    let b_waiting = spawn_admit(&f, "b");
    settle().await;
    assert_eq!(counts(&f, "a"), (4, 100));
    assert_eq!(counts(&f, "b"), (0, 1));

    // The first freed seat goes to B, which has none, though A has waited longer.
    drop(a_seats.pop());
    settle().await;
    assert!(b_waiting.is_finished());
    let b_seat = b_waiting.await.unwrap().expect("b admitted");
    assert_eq!(counts(&f, "a"), (3, 100));
    assert_eq!(counts(&f, "b"), (1, 0));

    // With two clusters active A's share is 2 of 4: a seat it frees while at 3 stays free.
    drop(a_seats.pop());
    settle().await;
    assert_eq!(counts(&f, "a"), (2, 100));
    assert_eq!(f.stats().in_flight, 3);
    // B, under its share, is seated at once even though A waits.
    let b_again = admit_now(&f, "b").await;
    drop(b_again);

    // Below its share A is served again, oldest waiter first.
    drop(a_seats.pop());
    settle().await;
    assert_eq!(counts(&f, "a"), (2, 99));
    assert!(a_waiting[0].is_finished());
    assert!(!a_waiting[1].is_finished());

    // Once B is gone A gets the whole server back.
    drop(b_seat);
    settle().await;
    assert_eq!(counts(&f, "a"), (4, 97));
    assert!(a_waiting[2].is_finished());
    for handle in a_waiting {
        handle.abort();
    }
    drop(a_seats);
}

#[tokio::test(start_paused = true)]
async fn freed_seats_go_to_the_cluster_with_fewest_in_use() {
    let f = fairness(6, 10);
    // A, alone at first, holds 5 seats; B holds the last one.
    let mut held = Vec::new();
    for (cluster, n) in [("a", 5), ("b", 1)] {
        for _ in 0..n {
            held.push(admit_now(&f, cluster).await);
        }
    }
    // B queues first, then C, then A.
    let waiting: Vec<_> = ["b", "c", "a"]
        .into_iter()
        .map(|cluster| spawn_admit(&f, cluster))
        .collect();
    settle().await;
    assert_eq!(f.stats().queued, 3);
    // Free one of A's seats: B and C are both under their share of 2, and C, with none in use,
    // is served before B, which waited longer.
    drop(held.remove(0));
    settle().await;
    assert!(waiting[1].is_finished());
    assert!(!waiting[0].is_finished() && !waiting[2].is_finished());
    assert_eq!(counts(&f, "c"), (1, 0));
    // The next freed seat goes to B (1 in use); A (4 in use) is over its share.
    drop(held.remove(0));
    settle().await;
    assert!(waiting[0].is_finished());
    assert!(!waiting[2].is_finished());
    assert_eq!(counts(&f, "b"), (2, 0));
    assert_eq!(counts(&f, "a"), (3, 1));
    for handle in waiting {
        handle.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_waits_at_most_queue_wait() {
    let f = Fairness::new(Config {
        total_seats: 1,
        queue_length: 10,
        queue_wait: Duration::from_secs(5),
        heavy_reads: 4,
        defaults: unlimited(),
    });
    let held = admit_now(&f, "a").await;
    let start = Instant::now();
    let err = f.admit("b", Class::ReadOnly).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(err.reason, Reason::QueueTimeout);
    assert_eq!(err.retry_after, Duration::from_secs(1));
    assert_eq!(
        err.message,
        "cluster b waited 5s for a free seat, the longest a request may wait; \
         the server is busy; retry after 1s"
    );
    let stats = f.stats();
    assert_eq!((stats.in_flight, stats.queued), (1, 0));
    assert_eq!(
        stats.clusters["b"].rejected,
        BTreeMap::from([(Reason::QueueTimeout, 1)])
    );
    drop(held);
    assert_eq!(f.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_seated_before_its_deadline_runs() {
    let f = Fairness::new(Config {
        total_seats: 1,
        queue_length: 10,
        queue_wait: Duration::from_secs(5),
        heavy_reads: 4,
        defaults: unlimited(),
    });
    let held = admit_now(&f, "a").await;
    let waiter = spawn_admit(&f, "b");
    tokio::time::sleep(Duration::from_secs(4)).await;
    drop(held);
    let seat = waiter.await.unwrap().expect("seated in time");
    assert_eq!(counts(&f, "b"), (1, 0));
    drop(seat);
    assert_eq!(f.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once() {
    let f = fairness(1, 2);
    let held = admit_now(&f, "a").await;
    let waiting = [spawn_admit(&f, "a"), spawn_admit(&f, "a")];
    settle().await;
    let start = Instant::now();
    let err = f.admit("a", Class::ReadOnly).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(err.reason, Reason::QueueFull);
    assert_eq!(err.retry_after, Duration::from_secs(1));
    assert_eq!(
        err.message,
        "cluster a has 2 requests waiting for a seat, the most it may; retry after 1s"
    );
    // The queue is per cluster: B may still wait.
    let b = spawn_admit(&f, "b");
    settle().await;
    assert_eq!(counts(&f, "b"), (0, 1));
    assert_eq!(f.stats().queued, 3);
    for handle in waiting {
        handle.abort();
    }
    b.abort();
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn zero_length_queue_leaves_no_trace() {
    let f = fairness(1, 0);
    let held = admit_now(&f, "a").await;
    assert_eq!(
        f.admit("b", Class::ReadOnly).await.unwrap_err().reason,
        Reason::QueueFull
    );
    assert_eq!(counts(&f, "b"), (0, 0));
    assert_eq!(f.inner.seats.lock().flows.len(), 1);
    drop(held);
    assert!(f.inner.seats.lock().flows.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue() {
    let f = fairness(1, 10);
    let held = admit_now(&f, "a").await;
    let waiter = spawn_admit(&f, "b");
    settle().await;
    assert_eq!(counts(&f, "b"), (0, 1));
    waiter.abort();
    settle().await;
    assert_eq!(counts(&f, "b"), (0, 0));
    assert_eq!(f.stats().queued, 0);
    drop(held);
    let stats = f.stats();
    assert_eq!((stats.in_flight, stats.queued), (0, 0));
    // The seat is really free.
    drop(admit_now(&f, "c").await);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_cancelled_after_its_seat_was_granted_does_not_leak_it() {
    let f = fairness(1, 10);
    let held = admit_now(&f, "a").await;
    let waiter = spawn_admit(&f, "b");
    settle().await;
    // The seat is granted to B's channel, but B's task is cancelled before it runs again.
    drop(held);
    assert_eq!(counts(&f, "b"), (1, 0));
    waiter.abort();
    settle().await;
    let stats = f.stats();
    assert_eq!((stats.in_flight, stats.queued), (0, 0));
    drop(admit_now(&f, "c").await);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_admit_future_does_not_leak() {
    let f = fairness(1, 10);
    let held = admit_now(&f, "a").await;
    // Poll the waiting future once through a timeout that expires, which drops it.
    let outcome = tokio::time::timeout(Duration::from_secs(1), f.admit("b", Class::ReadOnly)).await;
    assert!(outcome.is_err());
    assert_eq!(f.stats().queued, 0);
    drop(held);
    assert_eq!(f.stats().in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn watches_are_counted_per_cluster() {
    let f = fairness(1, 1);
    f.set_limits(
        "a",
        Limits {
            max_watches: 2,
            ..unlimited()
        },
    );
    let one = f.watch("a").unwrap();
    let two = f.watch("a").unwrap();
    assert_eq!(f.usage("a").watches, 2);
    let err = f.watch("a").unwrap_err();
    assert_eq!(err.reason, Reason::TooManyWatches);
    assert_eq!(err.retry_after, Duration::from_secs(1));
    assert_eq!(
        err.message,
        "cluster a is limited to 2 open watches; close one or retry after 1s"
    );
    assert_eq!(f.usage("a").watches, 2);
    // Watches take no seats.
    assert_eq!(f.stats().in_flight, 0);
    // Another cluster has its own count.
    let other = f.watch("b").unwrap();
    drop(one);
    let three = f.watch("a").unwrap();
    assert_eq!(f.usage("a").watches, 2);
    assert_eq!(f.stats().clusters["a"].watches, 2);
    drop((two, three, other));
    assert_eq!(f.usage("a").watches, 0);
    assert_eq!(f.usage("b").watches, 0);
}

#[test]
fn growth_is_checked_against_object_and_byte_limits() {
    let f = fairness(1, 1);
    f.set_limits(
        "a",
        Limits {
            max_objects: 10,
            max_stored_bytes: 1000,
            ..unlimited()
        },
    );
    f.reset_usage("a", 9, 900);
    assert_eq!(f.check_growth("a", 1, 100), Ok(()));
    let err = f.check_growth("a", 2, 0).unwrap_err();
    assert_eq!(err.reason, Reason::ObjectLimit);
    assert_eq!(err.retry_after, Duration::ZERO);
    assert_eq!(err.reason.status_code(), 403);
    assert_eq!(
        err.message,
        "cluster a is limited to 10 objects and stores 9; delete objects before creating more"
    );
    let err = f.check_growth("a", 0, 101).unwrap_err();
    assert_eq!(err.reason, Reason::ByteLimit);
    assert_eq!(
        err.message,
        "cluster a is limited to 1000 bytes of stored objects and stores 900; \
         this write would add 101"
    );
    // Shrinking always passes.
    assert_eq!(f.check_growth("a", -1, -500), Ok(()));

    f.record("a", 1, 100);
    assert_eq!(
        f.usage("a"),
        Usage {
            objects: 10,
            bytes: 1000,
            watches: 0
        }
    );
    assert!(f.check_growth("a", 1, 0).is_err());
    // An update in place that does not grow passes at the limit.
    assert_eq!(f.check_growth("a", 0, 0), Ok(()));
    f.record("a", -20, -5000);
    assert_eq!(f.usage("a").objects, 0);
    assert_eq!(f.usage("a").bytes, 0);

    let rejected = &f.stats().clusters["a"].rejected;
    assert_eq!(rejected[&Reason::ObjectLimit], 2);
    assert_eq!(rejected[&Reason::ByteLimit], 1);
}

#[test]
fn unknown_clusters_get_the_defaults_and_forget_resets() {
    let f = fairness(1, 1);
    assert_eq!(f.limits("new"), unlimited());
    let custom = Limits {
        max_objects: 5,
        ..Limits::default()
    };
    f.set_limits("new", custom);
    assert_eq!(f.limits("new"), custom);
    f.record("new", 3, 30);
    assert_eq!(f.usage("new").objects, 3);
    f.forget("new");
    assert_eq!(f.limits("new"), unlimited());
    assert_eq!(f.usage("new"), Usage::default());
    assert!(f.stats().clusters.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_smaller_burst_takes_effect_at_once() {
    // No queue: only the burst's worth (one) may wait for a token.
    let f = fairness(10, 0);
    f.set_limits(
        "a",
        Limits {
            requests_per_second: 1,
            burst: 100,
            ..Limits::default()
        },
    );
    f.set_limits(
        "a",
        Limits {
            requests_per_second: 1,
            burst: 1,
            ..Limits::default()
        },
    );
    drop(admit_now(&f, "a").await);
    let paced = spawn_admit(&f, "a");
    settle().await;
    assert_eq!(
        f.admit("a", Class::ReadOnly).await.unwrap_err().reason,
        Reason::RateLimited
    );
    assert!(paced.await.unwrap().is_ok());
}

#[test]
fn fairness_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Fairness>();
    fn assert_send<T: Send>() {}
    assert_send::<Seat>();
    assert_send::<WatchPermit>();
}

#[tokio::test(start_paused = true)]
async fn a_cluster_at_its_share_waits_though_seats_are_free() {
    let f = fairness(4, 10);
    let mut a_seats = Vec::new();
    for _ in 0..4 {
        a_seats.push(admit_now(&f, "a").await);
    }
    a_seats.truncate(2);
    let b_seat = admit_now(&f, "b").await;
    assert_eq!(f.stats().in_flight, 3);
    // A holds its share (2 of 4 with two clusters active): its next request waits.
    let a_next = spawn_admit(&f, "a");
    settle().await;
    assert_eq!(counts(&f, "a"), (2, 1));
    // When B leaves, A is alone again and is seated.
    drop(b_seat);
    settle().await;
    assert!(a_next.is_finished());
    assert_eq!(counts(&f, "a"), (3, 0));
}

#[tokio::test]
#[ignore = "timing"]
async fn uncontended_admit_cost() {
    let f = Fairness::new(Config::default());
    f.set_limits("a", unlimited());
    let n = 1_000_000;
    let start = std::time::Instant::now();
    for _ in 0..n {
        drop(f.admit("a", Class::ReadOnly).await.unwrap());
    }
    let with_bucket = Fairness::new(Config::default());
    with_bucket.set_limits(
        "a",
        Limits {
            requests_per_second: u32::MAX,
            burst: u32::MAX,
            ..Limits::default()
        },
    );
    let mid = std::time::Instant::now();
    for _ in 0..n {
        drop(with_bucket.admit("a", Class::ReadOnly).await.unwrap());
    }
    eprintln!(
        "admit+release: {:?} per call without bucket, {:?} with",
        (mid - start) / n,
        mid.elapsed() / n
    );
}

#[tokio::test(start_paused = true)]
async fn heavy_reads_take_turns_per_cluster() {
    let f = Fairness::new(Config {
        total_seats: 100,
        queue_length: 10,
        queue_wait: Duration::from_secs(5),
        heavy_reads: 2,
        defaults: unlimited(),
    });
    let first = f.heavy_read("a").await.unwrap();
    let second = f.heavy_read("a").await.unwrap();
    // A's third waits for a turn; B's reads are not behind A's.
    let third = {
        let f = f.clone();
        tokio::spawn(async move { f.heavy_read("a").await })
    };
    settle().await;
    assert!(!third.is_finished());
    let b = f.heavy_read("b").await.unwrap();
    drop(first);
    let third = third.await.unwrap().expect("a turn freed by the first");
    // Past the wait, a read is refused with Retry-After.
    let start = Instant::now();
    let err = f.heavy_read("a").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(err.reason, Reason::QueueTimeout);
    assert_eq!(err.retry_after, Duration::from_secs(1));
    assert!(err.message.contains("runs 2 lists"), "{}", err.message);
    drop((second, third, b));
    let _turn = f.heavy_read("a").await.unwrap();
}
