//! Any bytes given to the .blend reader: an error or facts, never a panic, a hang or an
//! allocation the bytes did not pay for (libFuzzer's -rss_limit_mb catches that).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let streamed = farm_blend::read(data);
    let seeking = farm_blend::read_seekable(std::io::Cursor::new(data));
    // Both ways read the same file the same way.
    match (streamed, seeking) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("streaming and seeking disagree: {a:?} vs {b:?}"),
    }
});
