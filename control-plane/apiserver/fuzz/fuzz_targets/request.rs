//! Request targets: the first byte picks a method, the rest is routed to a cluster, parsed as a
//! resource request and its query read (see `apiserver::fuzzing::request`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apiserver::fuzzing::request(data));
