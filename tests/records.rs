//! Records whatever their length, and inputs that break part way: a line costs time linear in
//! its length and at most `--max-record-size` of memory, a longer one is an invalid record
//! (named, counted, skipped); a file that fails after N records says that N were used.

use std::io::Write;

use crate::util::*;

/// A mapper and a reducer that pass every line through.
fn cat_job(t: &TestContext, with_reducer: bool) {
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    let mut c = "mapper: {language: binary, script: cat.sh}\n".to_string();
    if with_reducer {
        c.push_str("reducer: {language: binary, script: cat.sh}\n");
    }
    t.write("c.yml", c);
}

/// Writes `head`, then `len` bytes of `x` (no newline), without holding them in memory.
fn write_long_line(t: &TestContext, rel: &str, head: &[u8], len: usize) -> std::path::PathBuf {
    let p = t.path(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    f.write_all(head).expect("write");
    let block = vec![b'x'; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        f.write_all(&block[..n]).expect("write");
        left -= n;
    }
    f.flush().expect("flush");
    p
}

fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

/// Regression: a 200 MB line without a newline took minutes through the shuffle (the sink
/// rescanned and copied the whole unfinished line for every 64 KiB read: O(L²)) and 465 MiB.
/// Over the default limit, it is now skipped as it streams past: seconds, little memory.
#[test]
fn a_200mb_line_over_the_limit_is_skipped_and_reported() {
    let t = TestContext::new();
    cat_job(&t, true);
    write_long_line(&t, "in/long.txt", b"before\n", 200_000_000);
    let out = t
        .cmd()
        .args(["run", "--config", "c.yml", "-o", "out.txt", "in/long.txt"])
        .assert()
        .success();
    let stderr = stderr_of(&out);
    assert_eq!(t.read("out.txt"), "before\n");
    assert!(
        stderr.contains("1 invalid records in in/long.txt (first at line 2: a record of 200000000 bytes is longer than --max-record-size (67108864 bytes)"),
        "{stderr}"
    );
    let r = t.report("out.txt.report.json");
    assert_eq!(r["totals"]["invalid_records"], 1);
    assert_eq!(r["totals"]["records"], 1);
    let input = &r["tasks"][0]["inputs"][0];
    assert_eq!(input["invalid_records"], 1);
    assert_eq!(input["invalid_samples"][0]["line"], 2);
    // The line was never held whole: at most the 64 MiB limit of it, plus the driver.
    let rss = r["driver_peak_rss_bytes"].as_u64().expect("rss");
    assert!(rss < 160 << 20, "driver peak RSS {rss} bytes");
}

/// The same kind of line, under a raised limit, goes through the mapper, the shuffle, the
/// merge and the reducer whole, in time and memory linear in its length.
#[test]
fn a_300mb_line_under_a_raised_limit_passes_through_whole() {
    let t = TestContext::new();
    cat_job(&t, true);
    let len = 300_000_000;
    write_long_line(&t, "in/long.txt", b"", len);
    t.write("in/short.txt", "a\tshort one\n");
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--max-record-size",
            "512MiB",
            "-o",
            "out.txt",
            "in",
        ])
        .assert()
        .success();
    let meta = std::fs::metadata(t.path("out.txt")).expect("result");
    assert_eq!(meta.len(), len as u64 + 1 + "a\tshort one\n".len() as u64);
    let mut f = std::fs::File::open(t.path("out.txt")).expect("open");
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut f, &mut head).expect("read");
    assert_eq!(&head, b"a\tshort one\n");
    let r = t.report("out.txt.report.json");
    assert_eq!(r["totals"]["invalid_records"], 0);
    assert_eq!(r["totals"]["output_records"], 2);
    // Linear in the line: a few copies of it at most (before: 465 MiB for 200 MB).
    let rss = r["driver_peak_rss_bytes"].as_u64().expect("rss");
    assert!(rss < 4 * len as u64, "driver peak RSS {rss} bytes");
}

/// A mapper's output line into the shuffle obeys the same limit: it is named by its line
/// of the mapper's output, counted, and left out; the job goes on.
#[test]
fn a_mapper_output_line_over_the_limit_is_left_out_of_the_shuffle() {
    let t = TestContext::new();
    t.write_exec(
        "map.sh",
        "#!/bin/sh\ncat\nhead -c 3000000 /dev/zero | tr '\\0' y\necho\necho after\n",
    );
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    t.write(
        "c.yml",
        "mapper: {language: binary, script: map.sh}\nreducer: {language: binary, script: cat.sh}\n",
    );
    t.write("in/a", "k1\tv\nk2\tv\n");
    let out = t
        .cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--max-record-size",
            "1MiB",
            "-o",
            "out.txt",
            "in/a",
        ])
        .assert()
        .success();
    assert_eq!(t.read("out.txt"), "after\nk1\tv\nk2\tv\n");
    let r = t.report("out.txt.report.json");
    assert_eq!(r["totals"]["invalid_records"], 1);
    let skipped = &r["tasks"][0]["invalid_output"];
    assert_eq!(skipped["records"], 1);
    assert_eq!(skipped["samples"][0]["line"], 3);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("1 invalid records in the output of")
            && stderr.contains("mapper output: a record of 3000000 bytes"),
        "{stderr}"
    );
}

/// The combiner's output goes into the shuffle too, under the same limit.
#[test]
fn a_combiner_output_line_over_the_limit_is_left_out_of_the_shuffle() {
    let t = TestContext::new();
    t.write_exec("cat.sh", "#!/bin/sh\nexec cat\n");
    t.write_exec(
        "comb.sh",
        "#!/bin/sh\ncat\nhead -c 2000000 /dev/zero | tr '\\0' z\n",
    );
    t.write(
        "c.yml",
        "mapper: {language: binary, script: cat.sh}\ncombiner: {language: binary, script: comb.sh}\nreducer: {language: binary, script: cat.sh}\n",
    );
    t.write("in/a", "k1\tv\n");
    t.cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--max-record-size",
            "1MiB",
            "-o",
            "out.txt",
            "in/a",
        ])
        .assert()
        .success();
    assert_eq!(t.read("out.txt"), "k1\tv\n");
    let r = t.report("out.txt.report.json");
    let skipped = &r["tasks"][0]["invalid_output"];
    assert_eq!(skipped["records"], 1, "{skipped}");
    assert!(skipped["samples"][0]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("combiner output: a record of 2000000 bytes")));
}

/// `polymr map` and `polymr reduce` take the flag too: a long input line is skipped and
/// counted against its file, the lines around it are kept.
#[test]
fn map_and_reduce_skip_input_lines_over_the_limit() {
    let t = TestContext::new();
    cat_job(&t, true);
    let long = "L".repeat(5000);
    t.write("in/a", format!("one\n{long}\nthree\n"));
    let out = t
        .cmd()
        .args([
            "map",
            "--config",
            "c.yml",
            "--max-record-size",
            "4KiB",
            "-o",
            "m.txt",
            "in/a",
        ])
        .assert()
        .success();
    assert_eq!(t.read("m.txt"), "one\nthree\n");
    assert!(
        stderr_of(&out).contains("1 invalid records in in/a (first at line 2"),
        "{}",
        stderr_of(&out)
    );
    let r = t.report("m.txt.report.json");
    assert_eq!(r["inputs"][0]["records"], 2);
    assert_eq!(r["inputs"][0]["invalid_records"], 1);

    t.write("mapped/b", format!("k\t1\n{long}"));
    t.cmd()
        .args([
            "reduce",
            "--config",
            "c.yml",
            "--max-record-size",
            "4KiB",
            "-o",
            "r.txt",
            "in/a",
            "mapped/b",
        ])
        .assert()
        .success();
    assert_eq!(t.read("r.txt"), "k\t1\none\nthree\n");
    let r = t.report("r.txt.report.json");
    assert_eq!(r["inputs"][0]["invalid_samples"][0]["line"], 2);
    assert_eq!(r["inputs"][1]["invalid_samples"][0]["line"], 2);
    assert_eq!(r["totals"]["invalid_records"], 2);

    t.cmd()
        .args(["map", "--config", "c.yml", "--max-record-size", "0", "in/a"])
        .assert()
        .code(2);
}

/// An xz file whose first stream holds `good` records and whose second stream is cut
/// right after its headers: no record of the second stream can be decoded.
fn truncated_xz(t: &TestContext, rel: &str, good: usize) {
    let first: String = (0..good).map(|i| format!("good {i}\n")).collect();
    let lost: String = (0..100_000).map(|i| format!("lost {i}\n")).collect();
    let a = std::fs::read(t.compress("tmp/a.xz", first.as_bytes(), "xz")).expect("read");
    let b = std::fs::read(t.compress("tmp/b.xz", lost.as_bytes(), "xz")).expect("read");
    t.write(rel, [&a[..], &b[..24]].concat());
    std::fs::remove_dir_all(t.path("tmp")).expect("rm");
}

/// Regression: a file that broke after N good records had those N records in the result,
/// yet the job listed it as "input not used"; and a truncated xz file was reported as "out
/// of memory" (async-compression's mapping of liblzma's LZMA_BUF_ERROR).
#[test]
fn a_truncated_xz_input_reports_exactly_the_records_used() {
    let t = TestContext::new();
    cat_job(&t, false);
    truncated_xz(&t, "in/1-cut.xz", 1000);
    t.write("in/2-good.txt", "fine\n");
    let out = t
        .cmd()
        .args(["run", "--config", "c.yml", "-o", "out.txt", "in"])
        .assert()
        .success();
    let stderr = stderr_of(&out);
    let want: String = (0..1000).map(|i| format!("good {i}\n")).collect::<String>() + "fine\n";
    assert_eq!(t.read("out.txt"), want);
    assert!(
        stderr.contains("input partly used: in/1-cut.xz")
            && stderr.contains("its first 1000 records are in the result")
            && stderr.contains("truncated or corrupt xz data"),
        "{stderr}"
    );
    assert!(!stderr.contains("out of memory"), "{stderr}");
    assert!(!stderr.contains("input not used"), "{stderr}");
    let r = t.report("out.txt.report.json");
    let lost = r["lost_inputs"].as_array().expect("lost_inputs");
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["name"], "in/1-cut.xz");
    assert_eq!(lost[0]["status"], "partial");
    assert_eq!(lost[0]["records"], 1000);
    assert!(lost[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("truncated or corrupt xz data")));
    assert_eq!(r["totals"]["records"], 1001);

    // `polymr map` says the same on stderr.
    let out = t
        .cmd()
        .args(["map", "--config", "c.yml", "-o", "m.txt", "in/1-cut.xz"])
        .assert()
        .success();
    assert!(
        stderr_of(&out).contains("input partly used: in/1-cut.xz: its first 1000 records"),
        "{}",
        stderr_of(&out)
    );

    // --fail-fast: still fatal, nothing published.
    let out = t
        .cmd()
        .args([
            "run",
            "--config",
            "c.yml",
            "--fail-fast",
            "--retries",
            "0",
            "-o",
            "ff.txt",
            "in",
        ])
        .assert()
        .code(1);
    assert!(!t.path("ff.txt").exists());
    let stderr = stderr_of(&out);
    assert!(stderr.contains("truncated or corrupt xz data"), "{stderr}");
    let r = t.report("ff.txt.report.json");
    assert_eq!(r["status"], "failed");
    assert!(r["lost_inputs"]
        .as_array()
        .expect("lost")
        .iter()
        .all(|l| l["status"] == "unused" && l["records"] == 0));
}

/// Regression: `polymr reduce` sorted the unfinished last line of an input that broke off
/// mid-line as if it were a record. Only whole lines are used, and the report counts them.
#[test]
fn reduce_uses_only_the_whole_lines_of_a_truncated_input() {
    let t = TestContext::new();
    cat_job(&t, true);
    let text: String = (0..50_000)
        .map(|i| format!("k{:05}\tvalue {i} END\n", i % 977))
        .collect();
    let full = std::fs::read(t.compress("in/cut.gz", text.as_bytes(), "gzip")).expect("read");
    t.write("in/cut.gz", &full[..full.len() / 2]);
    let out = t
        .cmd()
        .args(["reduce", "--config", "c.yml", "-o", "r.txt", "in/cut.gz"])
        .assert()
        .success();
    let result = t.read("r.txt");
    assert!(!result.is_empty());
    for line in result.lines() {
        assert!(
            line.ends_with(" END"),
            "a partial record was used: {line:?}"
        );
    }
    let used = result.lines().count();
    let r = t.report("r.txt.report.json");
    assert_eq!(r["inputs"][0]["status"], "failed");
    assert_eq!(r["inputs"][0]["records"], used as u64);
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&format!(
            "input partly used: in/cut.gz: its first {used} records are in the result"
        )) && stderr.contains("truncated or corrupt gzip data"),
        "{stderr}"
    );
}

/// Regression: `driver_peak_rss_bytes` came from getrusage, whose peak survives execve: a
/// driver started by a process holding hundreds of MiB reported that process's peak.
#[test]
fn driver_peak_rss_is_the_drivers_own() {
    let t = TestContext::new();
    cat_job(&t, true);
    t.write("in/a", "k\tv\n");
    // This process's resident memory, as the driver's parent, at the fork.
    let ballast = vec![1u8; 400 << 20];
    let out = t
        .cmd()
        .args(["run", "--config", "c.yml", "-o", "out.txt", "in/a"])
        .assert()
        .success();
    assert_eq!(
        std::hint::black_box(&ballast).iter().step_by(4096).count(),
        102_400
    );
    drop(out);
    let r = t.report("out.txt.report.json");
    let rss = r["driver_peak_rss_bytes"].as_u64().expect("rss");
    assert!(rss > 0 && rss < 200 << 20, "driver peak RSS {rss} bytes");
}

/// Regression: the helpers number lines by the records they receive, so after a line the
/// driver skipped for its length, every invalid record a helper reported was one line early.
#[test]
fn helper_line_numbers_stay_those_of_the_file_after_a_skipped_long_line() {
    let t = TestContext::new();
    t.write(
        "map.py",
        "def mapper(uuid, file, js):\n    return '%s 1\\n' % js['os']\n",
    );
    t.write("c.yml", "mapper: {language: python, script: map.py}\n");
    let long = "x".repeat(5000);
    t.write(
        "in/a",
        format!("u1\t{{\"os\": \"Linux\"}}\nu2\t{{\"os\": \"{long}\"}}\nu3\t{{\"os\": \"Darwin\"}}\nu4\t{{not json\nu5\t{{\"os\": \"WINNT\"}}\n"),
    );
    t.cmd()
        .args([
            "map",
            "--config",
            "c.yml",
            "--max-record-size",
            "4KiB",
            "-o",
            "m.txt",
            "in/a",
        ])
        .assert()
        .success();
    assert_eq!(t.read("m.txt"), "Linux 1\nDarwin 1\nWINNT 1\n");
    let r = t.report("m.txt.report.json");
    let input = &r["inputs"][0];
    assert_eq!(input["invalid_records"], 2, "{r}");
    let lines: Vec<u64> = input["invalid_samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| s["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, vec![2, 4], "{r}");
}
