//! SIGINT/SIGTERM: the first one cancels the work gracefully (children get SIGTERM, then
//! SIGKILL, temporary files are removed); the second kills every child group at once and
//! exits.

use std::sync::atomic::{AtomicI32, Ordering};

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The signal that stopped us, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Starts listening; the token is cancelled on the first signal.
pub fn install() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let t = token.clone();
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            let sig = tokio::select! {
                _ = int.recv() => libc_signo(nix::sys::signal::Signal::SIGINT),
                _ = term.recv() => libc_signo(nix::sys::signal::Signal::SIGTERM),
            };
            count += 1;
            if count == 1 {
                RECEIVED.store(sig, Ordering::SeqCst);
                tracing::warn!("signal {sig} received: stopping children and cleaning up (a second signal kills at once)");
                t.cancel();
            } else {
                crate::process::kill_all_now();
                eprintln!("polymr: second signal: killed all children");
                std::process::exit(i32::from(crate::exit::interrupted(sig)));
            }
        }
    });
    Ok(token)
}

fn libc_signo(s: nix::sys::signal::Signal) -> i32 {
    s as i32
}
