//! Faults from outside: a read-only ledger, a missing one, an unreadable one,
//! a full disk, and damage to the log (an unknown format version, damaged
//! bytes, a broken chain) — through the real binary and the library.
//!
//! Every fault must give a clear error (exit 1, a message naming the problem
//! and the path or seq), never a panic, and leave the ledger as it was: it
//! still verifies up to its last good seq, and a failed append stored nothing
//! (the head seq and hash are unchanged once the fault is gone).
//!
//! How the faults are made, so that they also work as root in a container:
//! * read-only / unreadable: the child runs as the unprivileged user 65534
//!   (`setgroups`, `setgid`, `setuid` before `exec`), since root ignores file
//!   modes; run as another user, the file modes alone do it.
//! * full disk: the child runs with `RLIMIT_FSIZE` just above the log file's
//!   size and `SIGXFSZ` ignored, so the kernel fails its writes past that size
//!   with `EFBIG`, as a full disk fails them with `ENOSPC`. The library case
//!   runs in a child copy of this test binary, which lowers its own limit.
//! * damage: the log file's blocks are rewritten, framed and checksummed
//!   anew (`common::damage`), or its bytes overwritten.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::damage::{chain_hash, edit, ledger_with_story, tamper, tamper_block};
use dealledger::{Error, Event, Ledger};
use serde_json::Value;

const NOBODY: u32 = 65_534;

/// A small valid batch for the story ledger (companies registered in 2030).
fn batch(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"company_registered","effective":"2030-01-01","company":"{tag}-{i}","name":"{tag} company {i} {}"}}"#,
                "x".repeat(200)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How the child process is constrained.
#[derive(Clone, Copy)]
enum As {
    /// As this process.
    Me,
    /// As the unprivileged user 65534 (when this process is root).
    Nobody,
    /// With `RLIMIT_FSIZE` at this many bytes and `SIGXFSZ` ignored.
    FileSizeLimit(u64),
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn dealledger(bin: &Path, db: &Path, how: As) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_remove("DEALLEDGER_DB")
        .env_remove("DEALLEDGER_SERVER")
        .env_remove("DEALLEDGER_TOKEN")
        .current_dir(db.parent().expect("db has a parent"))
        .arg("--db")
        .arg(db);
    match how {
        As::Me => {}
        As::Nobody => {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(NOBODY) != 0
                        || libc::setuid(NOBODY) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        As::FileSizeLimit(bytes) => {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
    }
    cmd
}

fn run(bin: &Path, db: &Path, how: As, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = dealledger(bin, db, how)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dealledger");
    let mut input = child.stdin.take().expect("stdin");
    let _ = input.write_all(stdin.as_bytes()); // a child that fails early closes its stdin
    drop(input);
    child.wait_with_output().expect("wait for dealledger")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 1, no panic, and every `needle` in stderr.
#[track_caller]
fn assert_fails_clearly(out: &Output, what: &str, needles: &[&str]) -> String {
    let err = stderr(out);
    assert!(!err.contains("panicked at"), "{what}: the process panicked:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{what}: expected exit 1\n--- stderr\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "{what}: stderr should name {needle:?}:\n{err}");
    }
    err
}

/// `verify --json` as this process: (last seq, head hash).
fn head(bin: &Path, db: &Path) -> (u64, String) {
    let out = run(bin, db, As::Me, &["verify", "--json"], "");
    assert!(out.status.success(), "verify failed:\n{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("verify --json");
    (v["last_seq"].as_u64().expect("last_seq"), v["hash"].as_str().expect("hash").to_owned())
}

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dealledger"))
}

/// The binary where user 65534 can run it: a hard link (or copy) in a
/// world-readable directory (the build directory may sit under a private home).
fn public_bin(dir: &Path) -> PathBuf {
    let to = dir.join("dealledger");
    if std::fs::hard_link(bin(), &to).is_err() {
        std::fs::copy(bin(), &to).expect("copy the binary");
    }
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod binary");
    to
}

/// Makes every file and directory under `path` read-only (for a non-root run).
fn chmod_tree(path: &Path, writable: bool) {
    let meta = std::fs::metadata(path).expect("metadata");
    let mode = match (meta.is_dir(), writable) {
        (true, true) => 0o755,
        (true, false) => 0o555,
        (false, true) => 0o644,
        (false, false) => 0o444,
    };
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            chmod_tree(&entry.expect("entry").path(), writable);
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

// ------------------------------------------------------------------ access

#[test]
fn a_read_only_ledger_refuses_clearly_and_stays_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    ledger_with_story(dir.path());
    let db = dir.path().join("db");
    let bin = public_bin(dir.path());
    let before = head(&bin, &db);
    let how = if is_root() { As::Nobody } else { As::Me };
    if !is_root() {
        chmod_tree(&db, false);
    }
    let db_text = db.display().to_string();
    for args in [vec!["append"], vec!["ownership", "meta"], vec!["verify"], vec!["log"]] {
        let out = run(&bin, &db, how, &args, &batch("ro", 2));
        let err = assert_fails_clearly(&out, &format!("{args:?} on a read-only ledger"), &[&db_text]);
        assert!(err.to_lowercase().contains("permission denied"), "{args:?}: say why:\n{err}");
        assert!(!err.contains("no ledger"), "{args:?}: the ledger exists:\n{err}");
    }
    if !is_root() {
        chmod_tree(&db, true);
    }
    assert_eq!(head(&bin, &db), before, "nothing changed");
    let out = run(&bin, &db, As::Me, &["append"], &batch("ro", 2));
    assert!(out.status.success(), "writable again, the append goes through:\n{}", stderr(&out));
    assert_eq!(head(&bin, &db).0, before.0 + 2);
}

#[test]
fn an_unreadable_ledger_is_named_not_taken_for_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    ledger_with_story(dir.path());
    let db = dir.path().join("db");
    let bin = public_bin(dir.path());
    let before = head(&bin, &db);
    let how = if is_root() { As::Nobody } else { As::Me };
    let db_text = db.display().to_string();
    for locked in [db.join("journal"), db.join("index"), db.clone()] {
        let mode = std::fs::metadata(&locked).expect("metadata").permissions().mode();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
        for args in [vec!["ownership", "meta"], vec!["verify"], vec!["export"], vec!["append"]] {
            let out = run(&bin, &db, how, &args, &batch("nr", 1));
            let what = format!("{args:?} with {} unreadable", locked.display());
            let err = assert_fails_clearly(&out, &what, &[&db_text]);
            assert!(err.to_lowercase().contains("permission denied"), "{what}: say why:\n{err}");
            assert!(!err.contains("no ledger"), "{what}: the ledger exists:\n{err}");
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(mode)).expect("chmod back");
        assert_eq!(head(&bin, &db), before, "readable again, nothing changed");
    }
}

#[test]
fn a_scrambled_or_truncated_log_file_is_named() {
    // Root reads anything: make the log file itself unreadable as a log.
    // Scrambled or emptied, it is no log file; cut in half, it looks like an
    // append torn by a crash, which the open cuts off (keeping the bytes
    // beside it), so the loss shows as the log ending before the seqs the
    // derived index has seen.
    let bin = bin();
    for (what, damage) in [("scrambled", 0u8), ("emptied", 1), ("cut in half", 2)] {
        let dir = tempfile::tempdir().expect("tempdir");
        ledger_with_story(dir.path());
        let db = dir.path().join("db");
        let file = db.join("journal");
        let saved = std::fs::read(&file).expect("read log file");
        let damaged = match damage {
            0 => vec![0xa5; saved.len()],
            1 => Vec::new(),
            _ => saved[..saved.len() / 2].to_vec(),
        };
        std::fs::write(&file, damaged).expect("damage");
        for args in [&["verify"][..], &["export"], &["append"], &["reindex"]] {
            let out = run(&bin, &db, As::Me, args, &batch("ns", 1));
            assert_fails_clearly(&out, &format!("{args:?} with the log file {what}"), &["seq "]);
        }
        for args in [&["ownership", "meta"][..], &["log"], &["history", "meta"]] {
            let out = run(&bin, &db, As::Me, args, "");
            let err = stderr(&out);
            assert!(!err.contains("panicked at"), "{args:?} with the log file {what}: panicked:\n{err}");
            assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {:?}\n{err}", out.status.code());
        }
        std::fs::write(&file, saved).expect("restore");
        assert_eq!(head(&bin, &db).0, 18, "the log file restored, the ledger is whole ({what})");
    }
}

#[test]
fn a_missing_ledger_is_named_and_never_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = bin();
    for db in [dir.path().join("missing"), dir.path().join("a").join("b")] {
        let db_text = db.display().to_string();
        let commands: [&[&str]; 12] = [
            &["ownership", "meta"],
            &["holdings", "meta"],
            &["partnerships", "meta"],
            &["executives", "meta"],
            &["career", "someone"],
            &["history", "meta"],
            &["log"],
            &["verify"],
            &["export"],
            &["query"],
            &["reindex"],
            &["log", "--entity", "meta"],
        ];
        for args in commands {
            std::fs::create_dir_all(db.parent().expect("parent")).expect("parent dir");
            let out = run(&bin, &db, As::Me, args, r#"{"cmd":"ownership","id":"meta"}"#);
            assert_fails_clearly(&out, &format!("{args:?} on {db_text}"), &["no ledger", &db_text]);
            assert!(!db.exists(), "{args:?} created {db_text}");
        }
    }
}

// ------------------------------------------------------------------ full disk

/// The size of the log file: writes past it extend the file.
fn log_file_size(db: &Path) -> u64 {
    std::fs::metadata(db.join("journal")).expect("log file").len()
}

/// The larger of the two data files' sizes: with the file size limit there,
/// the ledger opens (sled writes within its files on open) and an append
/// fails once it needs more room than the files have.
fn data_files_size(db: &Path) -> u64 {
    log_file_size(db).max(std::fs::metadata(db.join("index").join("db")).expect("index file").len())
}

#[test]
fn a_full_disk_refuses_the_append_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    let db = dir.path().join("db");
    let bin = bin();
    let db_text = db.display().to_string();
    let mut expected = head(&bin, &db);
    let mut refused = 0;
    // Appends that fit in the room left, that overflow only the derived index
    // (acknowledged: the log is durable), and that overflow the log.
    let mut write_failed = false;
    for (round, events) in [5, 6_000, 1_500].into_iter().enumerate() {
        let input = batch(&format!("full{round}"), events);
        // The last round leaves no room at all past the first 4 KiB of any
        // file: the rounds before may fit in the room the index's file has
        // beyond the log's, so only this makes the refusal certain.
        let limit = if round == 2 { 4_096 } else { data_files_size(&db) };
        let out = run(&bin, &db, As::FileSizeLimit(limit), &["append", "--json"], &input);
        let what = format!("round {round}: append of {events} events with the files capped at {limit} bytes");
        let err = stderr(&out);
        assert!(!err.contains("panicked at"), "{what}: panicked:\n{err}");
        let answers = common::parse_json_lines(&String::from_utf8_lossy(&out.stdout));
        if out.status.success() {
            assert_eq!(answers.len(), events, "{what}: one answer per event");
            assert_eq!(answers[0]["seq"].as_u64(), Some(expected.0 + 1), "{what}");
            let now = head(&bin, &db);
            assert_eq!(now.0, expected.0 + events as u64, "{what}: acknowledged, so stored");
            expected = now;
            continue;
        }
        refused += 1;
        // It fails at the append's write, or already at the open (sled writes
        // on open too, e.g. to catch the index up after an earlier fault).
        let err = assert_fails_clearly(&out, &what, &[&db_text, "File too large"]);
        let at_write = err.contains("cannot write to") && err.contains("nothing of this append was stored");
        assert!(at_write || err.contains("cannot open"), "{what}: say what failed:\n{err}");
        write_failed |= at_write;
        eprintln!("{what}: refused {}", if at_write { "at the write" } else { "at the open" });
        assert!(answers.is_empty(), "{what}: nothing acknowledged, yet stdout has {} answers", answers.len());
        // Room again: the ledger verifies, unchanged, and takes the same append.
        assert_eq!(head(&bin, &db), expected, "{what}: the failed append changed the ledger");
        let out = run(&bin, &db, As::Me, &["append", "--json"], &input);
        assert!(out.status.success(), "{what}: the retry failed:\n{}", stderr(&out));
        let answers = common::parse_json_lines(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(answers.len(), events);
        assert_eq!(answers[0]["seq"].as_u64(), Some(expected.0 + 1), "{what}: seqs continue from the last good one");
        expected = head(&bin, &db);
        assert_eq!(expected.0, answers[events - 1]["seq"].as_u64().expect("seq"));
    }
    // Whether the refusal comes at the write or already at the open depends on
    // where sled puts the bytes (sled writes on open too); the write path
    // itself is pinned by `a_full_disk_fails_a_library_append_cleanly`.
    assert!(refused > 0, "no append overflowed the files ({refused} failed, at the write: {write_failed})");
}

/// The library side of a full disk, in a child copy of this test binary (an
/// rlimit is per process): the failed append returns an error naming the
/// path, stores nothing (neither in this `Ledger` nor on disk), and once
/// there is room again the ledger, reopened, takes the next append at the
/// same seq.
#[test]
fn a_full_disk_fails_a_library_append_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    let db = dir.path().join("db");
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "full_disk_child", "--ignored", "--nocapture", "--test-threads", "1"])
        .env("FAULTS_CHILD_DB", &db)
        .output()
        .expect("run the child test");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "the child failed:\n{text}");
    assert!(text.contains("child: done"), "the child did not run its checks:\n{text}");
    eprintln!("{}", text.lines().filter(|l| l.starts_with("child:")).collect::<Vec<_>>().join("\n"));
    let ledger = Ledger::open(&db).expect("reopen");
    let v = ledger.verify().expect("verify");
    assert_eq!(v.last_seq, 18 + 3, "the story, then only the append made after the fault");
    // The failed batch was large enough to be indexed while its log write
    // ran: none of its companies is known, the append after it is.
    let at = dealledger::At::date(dealledger::Date::parse("2031-01-01").expect("date"));
    assert!(
        matches!(ledger.ownership("lib-0", at), Err(Error::UnknownEntity { .. })),
        "a failed append's fact is visible"
    );
    assert!(ledger.ownership("after-0", at).is_ok(), "the append after the fault is indexed");
}

fn set_file_size_limit(bytes: Option<u64>) {
    let limit = bytes.map_or(libc::RLIM_INFINITY, |b| b as libc::rlim_t);
    let limit = libc::rlimit { rlim_cur: limit, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain system calls on this process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0, "setrlimit");
    }
}

#[test]
#[ignore = "run by a_full_disk_fails_a_library_append_cleanly in a child process"]
fn full_disk_child() {
    let Some(db) = std::env::var_os("FAULTS_CHILD_DB").map(PathBuf::from) else { return };
    let ledger = Ledger::open(&db).expect("open");
    let before = ledger.verify().expect("verify");
    let log_lines = |ledger: &Ledger| {
        let mut n = 0;
        ledger
            .log(None, |_| {
                n += 1;
                Ok(())
            })
            .expect("log");
        n
    };
    // From here on, every write past the first byte of any file fails.
    set_file_size_limit(Some(1));
    // (100 events: a batch indexed while its log write runs)
    match ledger.append_text(&batch("lib", 100)) {
        Err(err) => {
            let text = err.to_string();
            assert!(text.contains(&db.display().to_string()), "name the ledger: {text}");
            assert!(text.contains("File too large"), "say why: {text}");
            assert!(matches!(err, Error::Disk { .. }), "{err:?}");
        }
        Ok(stored) => panic!("an append past the file size limit succeeded: {} events", stored.len()),
    }
    // Nothing of it is visible in this process either.
    assert_eq!(ledger.last_seq(), before.last_seq);
    assert_eq!(log_lines(&ledger), before.last_seq as usize, "log shows no unacknowledged record");
    set_file_size_limit(None);
    assert_eq!(ledger.verify().expect("verify after the fault").last_seq, before.last_seq);
    // The same Ledger, or a reopened one, takes the next append at the next seq.
    let next = match ledger.append_text(&batch("after", 3)) {
        Ok(stored) => stored,
        Err(err) => {
            eprintln!("child: the ledger asks to be reopened after a failed write: {err}");
            assert!(err.to_string().contains("reopen"), "{err}");
            drop(ledger);
            let reopened = Ledger::open(&db).expect("reopen");
            assert_eq!(reopened.verify().expect("verify").last_seq, before.last_seq);
            reopened.append_text(&batch("after", 3)).expect("append after reopening")
        }
    };
    assert_eq!(next[0].seq, before.last_seq + 1, "seqs continue from the last good one");
    println!("child: done");
}

// ------------------------------------------------------------------ damage

/// Every command on a damaged ledger: no panic; a failure exits 1 naming `seq`.
fn sweep(db: &Path, seq: u64, what: &str) {
    let bin = bin();
    let needle = format!("seq {seq}");
    let reads: [&[&str]; 9] = [
        &["ownership", "scale-ai", "--json"],
        &["holdings", "meta", "--json"],
        &["partnerships", "openai", "--json"],
        &["executives", "scale-ai", "--json"],
        &["career", "alexandr-wang", "--json"],
        &["history", "scale-ai", "--json"],
        &["log"],
        &["log", "--entity", "scale-ai"],
        &["query"],
    ];
    for args in reads {
        let out = run(&bin, db, As::Me, args, r#"{"cmd":"ownership","id":"scale-ai"}"#);
        let err = stderr(&out);
        assert!(!err.contains("panicked at"), "{what}: {args:?} panicked:\n{err}");
        match out.status.code() {
            Some(0) => {}
            Some(1) => assert!(err.contains(&needle), "{what}: {args:?} failed without naming {needle}:\n{err}"),
            other => panic!("{what}: {args:?} exited {other:?}:\n{err}"),
        }
    }
    let out = run(&bin, db, As::Me, &["verify"], "");
    assert_fails_clearly(&out, &format!("{what}: verify"), &[&needle]);
    // An append reads the head record only: it refuses when that one is
    // damaged, and otherwise goes on (verify is the whole-log check).
    let out = run(&bin, db, As::Me, &["append"], &batch("dmg", 1));
    let err = stderr(&out);
    assert!(!err.contains("panicked at"), "{what}: append panicked:\n{err}");
    assert!(
        out.status.success() || (out.status.code() == Some(1) && err.contains(&needle)),
        "{what}: append exited {:?} without naming {needle}:\n{err}",
        out.status.code()
    );
    let out = run(&bin, db, As::Me, &["verify"], "");
    assert_fails_clearly(&out, &format!("{what}: verify after the append"), &[&needle]);
    // The good prefix exports, imports into a new ledger, and verifies.
    let out = run(&bin, db, As::Me, &["export"], "");
    let err = assert_fails_clearly(&out, &format!("{what}: export"), &[&needle]);
    let prefix = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(prefix.lines().count() as u64, seq - 1, "{what}: export writes the good prefix ({err})");
    let restored = db.with_file_name(format!("restored-{seq}"));
    let file = db.with_file_name(format!("prefix-{seq}.jsonl"));
    std::fs::write(&file, &prefix).expect("write prefix");
    let out = run(&bin, &restored, As::Me, &["import", file.to_str().expect("utf-8 path")], "");
    assert!(out.status.success(), "{what}: import of the good prefix:\n{}", stderr(&out));
    assert_eq!(head(&bin, &restored).0, seq - 1, "{what}: the restored ledger holds the good prefix");
}

#[test]
fn an_unknown_format_version_is_named_by_every_command() {
    for seq in [1, 9, 18] {
        let dir = tempfile::tempdir().expect("tempdir");
        ledger_with_story(dir.path());
        tamper(dir.path(), seq, |bytes| bytes[0] = 0x7f);
        let out = run(&bin(), &dir.path().join("db"), As::Me, &["verify"], "");
        assert_fails_clearly(&out, "verify", &[&format!("seq {seq}"), "format version 127"]);
        sweep(&dir.path().join("db"), seq, &format!("record {seq} in format version 127"));
    }
}

#[test]
fn an_unknown_block_version_is_named_by_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    tamper_block(dir.path(), 7, |bytes| bytes[0] = 0x7f);
    sweep(&dir.path().join("db"), 7, "log block 7-12 in an unknown version");
}

#[test]
fn a_damaged_record_is_named_by_every_command() {
    for (seq, cut) in [(2, 3), (10, 1), (17, 40)] {
        let dir = tempfile::tempdir().expect("tempdir");
        ledger_with_story(dir.path());
        tamper(dir.path(), seq, |bytes| bytes.truncate(cut));
        sweep(&dir.path().join("db"), seq, &format!("record {seq} cut to {cut} bytes"));
    }
}

#[test]
fn a_broken_chain_is_named_by_every_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    edit(dir.path(), 11, |rec| {
        rec.prev_hash = [9; 32];
        rec.hash = chain_hash(rec);
    });
    sweep(&dir.path().join("db"), 11, "record 11 chained to a wrong predecessor");
    let dir = tempfile::tempdir().expect("tempdir");
    ledger_with_story(dir.path());
    edit(dir.path(), 4, |rec| {
        if let Event::CompanyRegistered { name, .. } = &mut rec.event {
            *name = "Someone Else".into();
        }
    });
    sweep(&dir.path().join("db"), 4, "record 4 altered");
}
