//! The foreground side of a terminal container: relay the pty master to husk's own stdio,
//! with the host terminal in raw mode and window size changes passed on.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::thread::JoinHandle;

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, OutputFlags, SetArg, Termios};

pub struct Relay {
    master: std::fs::File,
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn start(master: OwnedFd) -> std::io::Result<Relay> {
        let master = std::fs::File::from(master);
        // As runc's foreground relay: no \n -> \r\n on the container's side, so what reaches
        // our stdout (a terminal in raw mode, or a file) is exactly what the process wrote.
        let mut pty = tcgetattr(master.as_fd())?;
        pty.output_flags.remove(OutputFlags::ONLCR);
        tcsetattr(master.as_fd(), SetArg::TCSANOW, &pty)?;
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(orig) = &saved {
            let mut raw = orig.clone();
            cfmakeraw(&mut raw);
            tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
        }
        let mut relay = Relay {
            master: master.try_clone()?,
            saved,
            output: None,
        };
        relay.resize();
        let mut to_master = master.try_clone()?;
        // Input ends with husk: a thread blocked on our stdin must not keep us alive.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_master.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let mut from_master = master;
        let output = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdout = std::io::stdout();
            // EIO once the last slave fd in the container closes: the end of output.
            while let Ok(n) = from_master.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        });
        relay.output = Some(output);
        Ok(relay)
    }

    /// Copies husk's terminal size to the container's terminal.
    pub fn resize(&self) {
        if let Ok((rows, cols)) = husk_init::sys::window_size(std::io::stdin().as_fd()) {
            let _ = husk_init::sys::set_window_size(self.master.as_fd(), rows, cols);
        }
    }

    /// Waits for the container's output to drain.
    pub fn finish(mut self) {
        if let Some(t) = self.output.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(orig) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, orig);
        }
    }
}
