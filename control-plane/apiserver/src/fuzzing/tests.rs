//! The fuzz harnesses over a fixed corpus: seeds (valid bodies of every format, hand-written
//! nasty cases) and seeded mutations of them, so CI exercises what `fuzz/` explores.

use super::*;

/// Valid and hostile bodies; each is fed with every content type.
fn body_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/src/protobuf/testdata");
    let mut files: Vec<_> = std::fs::read_dir(testdata)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        seeds.push(std::fs::read(f).unwrap());
    }
    seeds.extend(
        [
            &br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":"b"}}"#[..],
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n",
            br#"[{"op":"add","path":"/metadata/labels/x","value":"y"},{"op":"copy","from":"/spec","path":"/spec/x"}]"#,
            br#"{"metadata":{"labels":{"a":null}},"spec":{"containers":[{"name":"c","$patch":"delete"}]}}"#,
            br#"{"spec":{"$setElementOrder/containers":[{"name":"c"}],"containers":[{"name":"d"}]}}"#,
            b"a: &a [1]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
            b"\xef\xbb\xbf{}",
            b"{\"a\":\"\xff\xfe\"}",
            b"{\"a\":\"\\ud800\"}",
            b"1e999999",
            b"-",
            b"",
            b"k8s\0",
            b"k8s\0\x0a\xff\xff\xff\xff\x0f",
            b"k8s\0\x12\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
        ]
        .map(<[u8]>::to_vec),
    );
    for open in [&b"["[..], b"{\"a\":", b"- ", b"[ "] {
        seeds.push(open.repeat(100_000));
    }
    seeds
}

/// Request targets, valid and not.
fn target_seeds() -> Vec<Vec<u8>> {
    [
        &b"/api/v1/namespaces/default/pods/p?watch=true&resourceVersion=1&limit=5"[..],
        b"/apis/apps/v1/namespaces/default/deployments/d/scale",
        b"/clusters/ns:c1/api/v1/pods?labelSelector=a%3Db,c!=d&fieldSelector=spec.nodeName%3Dn",
        b"/clusters/-/api/../v1",
        b"/api/v1/namespaces/%ff/pods",
        b"/api/v1/namespaces/\xff\xfe/pods?labelSelector=\xc0",
        b"/api/v1/pods?labelSelector=a+in+(b,c),!d&continue=%ff%fe&timeoutSeconds=-1",
        b"/apis/a/b/c/d/e/f/g/h/i/j/k/l/m/n",
        b"//////",
        b"?",
        b"",
    ]
    .map(<[u8]>::to_vec)
    .into()
}

#[test]
fn decode_survives_the_corpus() {
    let seeds = body_seeds();
    for seed in &seeds {
        for pick in 0..CONTENT_TYPES.len() as u8 {
            let mut input = vec![pick];
            input.extend_from_slice(seed);
            decode(&input);
        }
    }
    let small: Vec<&Vec<u8>> = seeds.iter().filter(|s| s.len() < 10_000).collect();
    let mut rng = XorShift::new(0x5eed);
    for _ in 0..20_000 {
        let mut input = vec![rng.next_u64() as u8];
        if rng.below(8) == 0 {
            let len = rng.below(64);
            input.extend((0..len).map(|_| rng.next_u64() as u8));
        } else {
            let seed = small[rng.below(small.len())];
            input.extend(mutate(&mut rng, seed));
        }
        decode(&input);
    }
}

#[test]
fn request_survives_the_corpus() {
    let seeds = target_seeds();
    for seed in &seeds {
        for pick in 0..=255u8 {
            let mut input = vec![pick];
            input.extend_from_slice(seed);
            request(&input);
        }
    }
    let mut rng = XorShift::new(0x7a26e7);
    for _ in 0..20_000 {
        let mut input = vec![rng.next_u64() as u8];
        let seed = &seeds[rng.below(seeds.len())];
        input.extend(mutate(&mut rng, seed));
        request(&input);
    }
}
