//! The helper framing (helpers/PROTOCOL.md, "Map input"): file markers and escaped records,
//! the bytes of each file cut into chunks anywhere, read back by a decoder written from the
//! protocol alone. Every record must come back byte for byte, in its file.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use polymr::records::{escape_into, file_marker, telemetry_dims};

#[derive(Debug, Arbitrary)]
struct File {
    name: String,
    bytes: Vec<u8>,
    cuts: Vec<u16>,
}

fuzz_target!(|files: Vec<File>| {
    let mut stream = Vec::new();
    let mut want = Vec::new();
    for (index, f) in files.iter().enumerate() {
        stream.extend_from_slice(&file_marker(index, &f.name));
        // The feed ends a last line without its newline with one.
        let mut bytes = f.bytes.clone();
        if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
            bytes.push(b'\n');
        }
        let mut cuts: Vec<usize> = f
            .cuts
            .iter()
            .map(|c| *c as usize % (bytes.len() + 1))
            .collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut start = 0;
        for end in cuts {
            let at_line_start = start == 0 || bytes[start - 1] == b'\n';
            escape_into(&bytes[start..end], &mut stream, at_line_start);
            start = end;
        }
        let lines: Vec<Vec<u8>> = match bytes.strip_suffix(b"\n") {
            Some(body) => body.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect(),
            None => Vec::new(),
        };
        let name = f.name.replace(['\t', '\n'], " ");
        want.push((index, telemetry_dims(&f.name), name, lines));
    }
    assert_eq!(unframe(&stream), want);
});

type Decoded = Vec<(usize, Vec<String>, String, Vec<Vec<u8>>)>;

fn unframe(stream: &[u8]) -> Decoded {
    let mut files: Decoded = Vec::new();
    if stream.is_empty() {
        return files;
    }
    let body = stream
        .strip_suffix(b"\n")
        .expect("the stream ends with a newline");
    for line in body.split(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"\0") {
            if let Some(record) = rest.strip_prefix(b"=") {
                files
                    .last_mut()
                    .expect("a record before any marker")
                    .3
                    .push(record.to_vec());
                continue;
            }
            let marker = rest
                .strip_prefix(b"F\t")
                .expect("a control line that is neither F nor =");
            let text = std::str::from_utf8(marker).expect("a marker is UTF-8");
            let mut f = text.splitn(3, '\t');
            let index: usize = f.next().and_then(|i| i.parse().ok()).expect("marker index");
            let dims: Vec<String> =
                serde_json::from_str(f.next().expect("marker dims")).expect("dims are JSON");
            let name = f.next().expect("marker name").to_string();
            files.push((index, dims, name, Vec::new()));
        } else {
            files
                .last_mut()
                .expect("a record before any marker")
                .3
                .push(line.to_vec());
        }
    }
    files
}
