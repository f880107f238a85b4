//! Request bodies: the first byte picks a content type, the rest goes to `decode_body`, the
//! protobuf decoder and the patch engines (see `apiserver::fuzzing::decode`).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apiserver::fuzzing::decode(data));
