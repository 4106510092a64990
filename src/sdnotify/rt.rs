//! The runtime around [`Notify`] for one supervised service: its socket, the datagrams read
//! from it, who sent them, and the warnings (one per kind and run of `run`).

use std::ffi::CString;

use super::socket::{self, Socket};
use super::{Input, Malformed, Msg, Notify, Output, parse};
use crate::svdir::{Setting, SvDir, errtext};

/// Warning kinds given once per run of `run`.
const W_SENDER: u8 = 1;
const W_MALFORMED: u8 = 2;
const W_OVERSIZED: u8 = 4;
const W_NOCRED: u8 = 8;
const W_NOTTEXT: u8 = 16;

pub struct Rt {
    pub sock: Socket,
    pub n: Notify,
    /// Kinds of warnings already given during this run.
    warned: u8,
    /// The first line of `notify-socket` the socket was bound for.
    setting: String,
}

/// The first line of `notify-socket`, or `None` when the service dir has none.
pub fn setting(dir: &SvDir) -> Option<String> {
    let data = std::fs::read(dir.path(super::FILE)).ok()?;
    let text = String::from_utf8_lossy(&data);
    Some(text.lines().next().unwrap_or("").trim().to_string())
}

impl Rt {
    /// Makes sure `rt` matches the service dir at a start of `run`: binds the socket when
    /// `notify-socket` appeared or changed, drops it when the file is gone.
    pub fn refresh(rt: &mut Option<Box<Rt>>, dir: &SvDir, tag: &str) {
        let Some(want) = setting(dir) else {
            *rt = None;
            return;
        };
        if rt.as_ref().is_some_and(|r| r.setting == want) {
            return;
        }
        *rt = None;
        match socket::bind_socket(&want, tag) {
            Ok(sock) => {
                // Orphans of the service (a daemon that forked away from `run`) come to us,
                // so that a MAINPID= naming one can be followed and reaped.
                // SAFETY: prctl with integer arguments only changes this process's flags.
                unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
                *rt = Some(Box::new(Rt {
                    sock,
                    n: Notify::default(),
                    warned: 0,
                    setting: want,
                }))
            }
            Err(e) => dir.warn(&format!(
                "unable to bind the notify socket of {}: {}",
                dir.show(super::FILE),
                errtext(&e)
            )),
        }
    }

    /// The variables `run` gets: `NOTIFY_SOCKET`, and `WATCHDOG_USEC` when set.
    pub fn env(&self, watchdog_usec: Option<u64>) -> Vec<(String, String)> {
        let mut v = vec![("NOTIFY_SOCKET".to_string(), self.sock.addr.clone())];
        if let Some(u) = watchdog_usec {
            v.push(("WATCHDOG_USEC".into(), u.to_string()));
        }
        v
    }

    /// A start of `run`: forget the last run.
    pub fn run_started(&mut self, watchdog_usec: Option<u64>, now_ms: u64) -> Vec<Output> {
        self.warned = 0;
        self.n.step(Input::RunStarted { watchdog_usec }, now_ms)
    }

    fn warn_once(&mut self, kind: u8, msg: String, out: &mut Vec<Output>) {
        if self.warned & kind == 0 {
            self.warned |= kind;
            out.push(Output::Warn(msg));
        }
    }

    /// Reads every waiting datagram. `run_pid` is the service's current process (none: every
    /// datagram is refused); `others` are the supervisor's other children.
    pub fn read(&mut self, run_pid: Option<i32>, others: &[i32], now_ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        loop {
            let d = match self.sock.recv() {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(e) => {
                    let msg = format!("unable to read the notify socket: {}", errtext(&e));
                    self.warn_once(W_NOCRED, msg, &mut out);
                    break;
                }
            };
            let Some(pid) = d.pid else {
                let msg = "ignoring a notification without sender credentials".to_string();
                self.warn_once(W_NOCRED, msg, &mut out);
                continue;
            };
            let ours = run_pid.is_some_and(|r| {
                pid == r || self.n.main_pid == Some(pid) || socket::in_tree(pid, r, true, others)
            });
            if !ours {
                let msg = format!(
                    "ignoring a notification from pid {pid}: not a process of this service"
                );
                self.warn_once(W_SENDER, msg, &mut out);
                continue;
            }
            let parsed = if d.oversized {
                Err(Malformed::Oversized)
            } else {
                parse(&d.data)
            };
            let msgs = match parsed {
                Ok(m) => m,
                Err(e) => {
                    let kind = match e {
                        Malformed::Oversized => W_OVERSIZED,
                        Malformed::NotText => W_NOTTEXT,
                        Malformed::BadLine(_) => W_MALFORMED,
                    };
                    let msg = format!("ignoring {} on the notify socket", e.describe());
                    self.warn_once(kind, msg, &mut out);
                    continue;
                }
            };
            let main_pid_ok = msgs.iter().all(|m| match m {
                Msg::MainPid(p) => {
                    run_pid.is_some_and(|r| *p == r || socket::in_tree(*p, r, true, others))
                }
                _ => true,
            });
            out.extend(self.n.step(Input::Msgs { msgs, main_pid_ok }, now_ms));
        }
        out
    }
}

/// `watchdog-usec`, warning about a malformed file.
pub fn watchdog_usec(dir: &SvDir) -> Option<u64> {
    match dir.uint(super::WATCHDOG_FILE) {
        Setting::Value(v) if v > 0 => Some(v),
        Setting::Invalid => {
            dir.warn(&format!(
                "invalid {}, ignored",
                dir.show(super::WATCHDOG_FILE)
            ));
            None
        }
        _ => None,
    }
}

/// `envp` (or, when `None`, this process's environment) with `vars` set.
pub fn with_vars(envp: Option<Vec<CString>>, vars: &[(String, String)]) -> Vec<CString> {
    let mut env: Vec<CString> = match envp {
        Some(e) => e,
        None => std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut b = k.into_encoded_bytes();
                b.push(b'=');
                b.extend_from_slice(&v.into_encoded_bytes());
                CString::new(b).ok()
            })
            .collect(),
    };
    for (k, v) in vars {
        let prefix = format!("{k}=");
        env.retain(|c| !c.as_bytes().starts_with(prefix.as_bytes()));
        if let Ok(c) = CString::new(format!("{k}={v}")) {
            env.push(c);
        }
    }
    env
}
