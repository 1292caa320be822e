//! The config loader, as `ringside check` runs it (`control::load_str`, which
//! `control::load_file` calls on the file's text).
//!
//! Invariants, beyond not panicking:
//! - loading is deterministic: the same text gives the same problems, or the same snapshot;
//! - every problem points inside the text (line and column from 1, a line the text has, or
//!   the one after it for the end of the text) and names the file;
//! - a loaded snapshot's sha256 is the text's, and its summary can be printed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = control::load_str(text, "fuzz.yaml");
    let second = control::load_str(text, "fuzz.yaml");
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.sha256, b.sha256);
            assert_eq!(a.summary(), b.summary());
            assert_eq!(a.sha256.len(), 64);
            assert_eq!(a.listeners.len(), a.config.listeners.len());
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            assert!(!a.is_empty());
            // YAML breaks lines at CRLF, LF and a lone CR (YAML 1.2 §5.4).
            let breaks = text.replace("\r\n", "\n").matches(['\r', '\n']).count();
            let lines = u32::try_from(breaks).unwrap_or(u32::MAX).saturating_add(1);
            for p in a.iter() {
                assert_eq!(p.file, "fuzz.yaml");
                assert!(p.line >= 1 && p.col >= 1, "{p:?}");
                // marked-yaml marks the end of a text of only comments and blank lines one
                // line past its last (`\n#c`: line 3): allowed, reported as a known quirk.
                assert!(p.line <= lines + 1, "{p:?} past the last line {lines}");
                assert!(!p.reason.is_empty());
            }
        }
        _ => panic!("loading twice gave different outcomes"),
    }
});
