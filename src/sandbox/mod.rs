//! The sandbox that runs untrusted programs (model-written code): one
//! Python process per run, isolated by Linux namespaces, with limits.
//!
//! A run gets:
//! - its own mount namespace whose root is an empty tmpfs holding only
//!   read-only binds of the system directories (`/usr`, `/lib*`, `/bin`,
//!   `/etc`), the Python installation, `/dev/null`, `/dev/zero`,
//!   `/dev/urandom`, a fresh `/proc`, a small `/tmp`, and `/work` (its own
//!   empty working directory, the only place it may write): the user's
//!   home, the work dir and everything else are not there (`pivot_root`,
//!   the old root detached);
//! - its own network namespace (no interface up: no network, 127.0.0.1
//!   included), PID namespace (the program is its init: when it ends,
//!   everything it started is killed, and it cannot signal rsr), IPC and
//!   UTS namespaces, and a session of its own;
//! - an unprivileged uid (`60000 + slot`, one per worker) where rsr runs as
//!   root; elsewhere a user namespace mapping the user to root inside with
//!   every capability dropped; `no_new_privs` either way;
//! - a scrubbed environment (`PATH`, `LANG`, `HOME=/work` only);
//! - limits: CPU seconds, wall time, address space, file size, open files
//!   and processes (the unprivileged uid or the user namespace makes
//!   `RLIMIT_NPROC` bite on a fork bomb), and the output it may write
//!   (beyond it the run is killed).
//!
//! [`Sandbox::new`] checks once that all of this works on the machine and
//! refuses with what is missing otherwise.

mod isolate;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The first uid of the sandbox's workers where rsr runs as root.
pub const UID_BASE: u32 = 60000;

/// Why programs cannot be run.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// The machine cannot isolate a program; nothing was run.
    #[error("cannot isolate programs on this machine: {0}")]
    Unavailable(String),
    /// Python was not found or does not answer.
    #[error("cannot use Python at {python}: {message}")]
    Python {
        /// The interpreter asked for.
        python: String,
        /// What went wrong.
        message: String,
    },
    /// A file or process of the sandbox itself failed.
    #[error("sandbox: {0}")]
    Io(String),
}

/// Limits of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// CPU time.
    pub cpu: Duration,
    /// Wall time.
    pub wall: Duration,
    /// Address space, bytes.
    pub memory: u64,
    /// Standard output and error kept, bytes each; writing more ends the run.
    pub output: u64,
    /// Largest file it may write, bytes.
    pub file_size: u64,
    /// Open files.
    pub files: u64,
    /// Processes (and threads) of its uid.
    pub processes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_secs(10),
            wall: Duration::from_secs(20),
            memory: 1 << 30,
            output: 1 << 20,
            file_size: 16 << 20,
            files: 64,
            processes: 32,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it (SIGKILL at the CPU limit, SIGSEGV, …).
    Signaled(i32),
    /// It ran past the wall time and was killed.
    WallTime,
    /// It wrote more than the output limit and was killed.
    Output,
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct Run {
    /// How it ended.
    pub ended: Ended,
    /// Its standard output (at most the output limit).
    pub stdout: Vec<u8>,
    /// Its standard error (at most the output limit).
    pub stderr: Vec<u8>,
    /// Wall time.
    pub wall: Duration,
}

/// A Python interpreter and where it lives.
#[derive(Debug, Clone)]
struct Python {
    /// The real executable.
    executable: PathBuf,
    /// `sys.base_prefix`: bound read-only into the sandbox.
    prefix: PathBuf,
    /// The first line of every script: the site-packages directories put
    /// on `sys.path` (Python starts with `-S`, which skips `site` and its
    /// `.pth` hooks: a start in a fifth of the time).
    prelude: String,
}

/// Runs programs in isolation; cheap to share between worker threads.
#[derive(Debug, Clone)]
pub struct Sandbox {
    python: Arc<Python>,
    scratch: PathBuf,
    root: bool,
    runs: Arc<AtomicU64>,
}

impl Sandbox {
    /// A sandbox running `python` (a name on `PATH` or a path), with its
    /// scratch directories under `scratch`. Runs a probe program through
    /// every layer of isolation and refuses when one is missing.
    pub fn new(python: &str, scratch: &Path) -> Result<Self, SandboxError> {
        if !cfg!(target_os = "linux") {
            return Err(SandboxError::Unavailable(
                "the sandbox needs Linux namespaces".into(),
            ));
        }
        let python = Arc::new(locate(python)?);
        std::fs::create_dir_all(scratch)
            .map_err(|e| SandboxError::Io(format!("cannot create {}: {e}", scratch.display())))?;
        let sandbox = Self {
            python,
            scratch: scratch.to_path_buf(),
            // SAFETY: geteuid has no preconditions.
            root: unsafe { libc::geteuid() } == 0,
            runs: Arc::new(AtomicU64::new(0)),
        };
        sandbox.probe()?;
        Ok(sandbox)
    }

    /// Runs a program that proves the isolation: it must be PID 1, not see
    /// its own scratch directory on the host, and reach no network.
    fn probe(&self) -> Result<(), SandboxError> {
        let script = format!(
            "import os, socket\nassert os.getpid() == 1, os.getpid()\nassert not os.path.exists({:?}), 'the host is visible'\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n    raise SystemExit('network')\nexcept OSError:\n    pass\nprint('ok')\n",
            self.scratch.display().to_string()
        );
        let run = self
            .run(0, &script, b"", &Limits::default())
            .map_err(|e| SandboxError::Unavailable(e.to_string()))?;
        if run.ended != Ended::Exited(0) || run.stdout != b"ok\n" {
            return Err(SandboxError::Unavailable(format!(
                "the probe program ended {:?}: {}",
                run.ended,
                String::from_utf8_lossy(&run.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Runs `script` with `stdin` as worker `slot` under `limits`.
    pub fn run(
        &self,
        slot: u32,
        script: &str,
        stdin: &[u8],
        limits: &Limits,
    ) -> Result<Run, SandboxError> {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .scratch
            .join(format!("run-{}-{slot}-{n}", std::process::id()));
        let result = self.run_in(&dir, slot, script, stdin, limits);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn run_in(
        &self,
        dir: &Path,
        slot: u32,
        script: &str,
        stdin: &[u8],
        limits: &Limits,
    ) -> Result<Run, SandboxError> {
        let io = |what: &str, e: std::io::Error| SandboxError::Io(format!("{what}: {e}"));
        let (work, newroot) = (dir.join("work"), dir.join("root"));
        for d in [&work, &newroot] {
            std::fs::create_dir_all(d).map_err(|e| io("cannot create a scratch dir", e))?;
        }
        std::fs::write(
            work.join("main.py"),
            format!("{}{script}", self.python.prelude),
        )
        .map_err(|e| io("cannot write main.py", e))?;
        let uid = if self.root { UID_BASE + slot } else { 0 };
        if self.root {
            use std::os::unix::fs::PermissionsExt;
            for p in [work.clone(), work.join("main.py")] {
                std::os::unix::fs::chown(&p, Some(uid), Some(uid))
                    .map_err(|e| io("cannot hand the scratch dir to the sandbox uid", e))?;
            }
            std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io("cannot set the scratch dir's mode", e))?;
        }
        let plan = isolate::Plan::new(
            &newroot,
            &work,
            &self.python.prefix,
            self.root.then_some(uid),
            limits,
        )
        .map_err(|e| io("cannot plan the sandbox", e))?;
        let mut cmd = Command::new(&self.python.executable);
        cmd.args(["-I", "-S", "-B", "/work/main.py"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", "/work")
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure only makes system calls on data prepared
        // before the fork (no allocation, no locks).
        unsafe {
            cmd.pre_exec(move || plan.enter());
        }
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| io("cannot start Python", e))?;
        let pid = child.id() as libc::pid_t;
        let mut input = child.stdin.take().expect("piped");
        let stdin = stdin.to_vec();
        let feeder = std::thread::spawn(move || {
            // A program that does not read its input closes the pipe.
            let _ = input.write_all(&stdin);
        });
        let over = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers = [
            reader(
                child.stdout.take().expect("piped"),
                limits.output,
                pid,
                &over,
            ),
            reader(
                child.stderr.take().expect("piped"),
                limits.output,
                pid,
                &over,
            ),
        ];
        // A watchdog kills the run at its wall time; the wait itself blocks.
        let (done, watch) = std::sync::mpsc::channel::<()>();
        let wall_limit = limits.wall;
        let watchdog = std::thread::spawn(move || {
            let expired = watch.recv_timeout(wall_limit).is_err();
            if expired {
                // SAFETY: kill has no memory preconditions; the child is not
                // reaped before this thread has sent its signal.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            expired
        });
        let status = child.wait().map_err(|e| io("cannot wait for Python", e));
        let _ = done.send(());
        let timed_out = watchdog.join().unwrap_or(false);
        let status = status?;
        let wall = started.elapsed();
        let _ = feeder.join();
        let [out, err] = readers.map(|r| r.join().unwrap_or_default());
        let ended = if over.load(Ordering::Relaxed) {
            Ended::Output
        } else if timed_out {
            Ended::WallTime
        } else {
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(c), _) => Ended::Exited(c),
                (None, Some(s)) => Ended::Signaled(s),
                (None, None) => Ended::Exited(-1),
            }
        };
        Ok(Run {
            ended,
            stdout: out,
            stderr: err,
            wall,
        })
    }
}

/// A thread keeping at most `limit` bytes of a pipe; past the limit it
/// kills the run and marks `over`.
fn reader(
    mut pipe: impl Read + Send + 'static,
    limit: u64,
    pid: libc::pid_t,
    over: &Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<u8>> {
    let over = Arc::clone(over);
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = (limit as usize).saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    if n > room {
                        over.store(true, Ordering::Relaxed);
                        // SAFETY: kill has no memory preconditions.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                        break;
                    }
                }
            }
        }
        kept
    })
}

/// The real executable and base prefix of `python`.
fn locate(python: &str) -> Result<Python, SandboxError> {
    let fail = |message: String| SandboxError::Python {
        python: python.to_string(),
        message,
    };
    let out = Command::new(python)
        .args([
            "-I",
            "-c",
            "import os, site, sys; print(os.path.realpath(sys.executable)); print(os.path.realpath(sys.base_prefix)); print(sys.version_info[0]); print(repr([p for p in site.getsitepackages() if os.path.isdir(p)]))",
        ])
        .output()
        .map_err(|e| fail(format!("{e} (install Python 3 or set verifier.options.python)")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    match lines.as_slice() {
        [exe, prefix, "3", site] if out.status.success() => Ok(Python {
            executable: PathBuf::from(exe),
            prefix: PathBuf::from(prefix),
            prelude: format!(
                "import sys as _rsr_sys; _rsr_sys.path.extend({site}); del _rsr_sys\n"
            ),
        }),
        _ => Err(fail(format!(
            "it is not Python 3 ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// `path` as a C string.
fn c_path(path: &Path) -> std::io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in a path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sandbox, or `None` on a machine that cannot isolate (a
    /// container without namespaces, a kernel forbidding unprivileged user
    /// namespaces): then it must refuse, saying so, and run nothing.
    fn sandbox() -> Option<(tempfile::TempDir, Sandbox)> {
        let dir = tempfile::tempdir().unwrap();
        match Sandbox::new("python3", &dir.path().join("scratch")) {
            Ok(s) => Some((dir, s)),
            Err(SandboxError::Unavailable(why)) => {
                assert!(!why.is_empty());
                eprintln!("no isolation on this machine, the sandbox refused: {why}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn short() -> Limits {
        Limits {
            cpu: Duration::from_secs(1),
            wall: Duration::from_secs(5),
            ..Limits::default()
        }
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// Processes on the machine whose real uid is `uid`.
    fn processes_of(uid: u32) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
                continue;
            };
            let owner = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|u| u.parse::<u32>().ok());
            if owner == Some(uid) {
                out.push(status.lines().next().unwrap_or_default().to_string());
            }
        }
        out
    }

    #[test]
    fn a_program_reads_stdin_and_writes_stdout_in_its_own_dir() {
        let Some((_d, s)) = sandbox() else { return };
        let script = "import os, sys\nopen('out.txt', 'w').write('x')\nprint(sys.stdin.read().upper(), os.getcwd(), os.listdir('.'))\n";
        let r = s.run(1, script, b"abc", &short()).unwrap();
        assert_eq!(r.ended, Ended::Exited(0), "{}", text(&r.stderr));
        assert_eq!(text(&r.stdout), "ABC /work ['main.py', 'out.txt']\n");
    }

    #[test]
    fn nothing_of_the_machine_is_reachable() {
        let Some((d, s)) = sandbox() else { return };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let secret = d.path().join("work-dir-file");
        std::fs::write(&secret, "rollouts").unwrap();
        // SAFETY: set before any thread of this test reads the environment.
        unsafe { std::env::set_var("RSR_TEST_FAKE_API_KEY", "sk-test-secret") };
        let script = format!(
            r#"import os, socket
found = []
for p in ["/root/.bashrc", "{secret}", "/home"]:
    found.append(os.path.exists(p))
try:
    open("/root/.bashrc", "a").write("evil")
    found.append("wrote bashrc")
except OSError:
    pass
for p in ["/usr/evil", "/etc/evil", "/evil", "../../evil"]:
    try:
        open(p, "w").write("x")
        found.append("wrote " + p)
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    found.append("connected")
except OSError:
    pass
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.umount2(b"/work", 2) == 0 or libc.umount2(b"/usr", 2) == 0:
    found.append("unmounted")
print(found, os.environ.get("RSR_TEST_FAKE_API_KEY"), sorted(os.environ))
"#,
            secret = secret.display()
        );
        let r = s.run(2, &script, b"", &short()).unwrap();
        assert_eq!(r.ended, Ended::Exited(0), "{}", text(&r.stderr));
        assert_eq!(
            text(&r.stdout),
            "[False, False, False] None ['HOME', 'LANG', 'PATH', 'PYTHONIOENCODING']\n"
        );
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "rollouts");
        assert!(listener.set_nonblocking(true).is_ok() && listener.accept().is_err());
    }

    #[test]
    fn runaway_programs_hit_their_limits() {
        let Some((_d, s)) = sandbox() else { return };
        let l = short();
        // An endless loop: CPU limit.
        let r = s.run(3, "while True:\n    pass\n", b"", &l).unwrap();
        assert!(
            matches!(r.ended, Ended::Signaled(libc::SIGXCPU | libc::SIGKILL)),
            "{:?}",
            r.ended
        );
        // Sleeping forever: wall time.
        let started = Instant::now();
        let r = s.run(3, "import time\ntime.sleep(60)\n", b"", &l).unwrap();
        assert_eq!(r.ended, Ended::WallTime);
        assert!(started.elapsed() < Duration::from_secs(7));
        assert!(r.wall < Duration::from_secs(7));
        // 20 GB: MemoryError, not the machine's memory.
        let r = s.run(3, "x = bytearray(20 * 2**30)\n", b"", &l).unwrap();
        assert_eq!(r.ended, Ended::Exited(1));
        assert!(text(&r.stderr).contains("MemoryError"));
        // 1 GB of output: killed at the output limit.
        let r = s
            .run(
                3,
                "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
                b"",
                &l,
            )
            .unwrap();
        assert_eq!(r.ended, Ended::Output);
        assert_eq!(r.stdout.len() as u64, l.output);
        // Deep recursion and a segfault end the run, nothing else.
        let r = s
            .run(
                3,
                "import sys\nsys.setrecursionlimit(10**9)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
                b"",
                &l,
            )
            .unwrap();
        assert!(!matches!(r.ended, Ended::Exited(0)), "{:?}", r.ended);
        let r = s
            .run(3, "import ctypes\nctypes.string_at(0)\n", b"", &l)
            .unwrap();
        assert_eq!(r.ended, Ended::Signaled(libc::SIGSEGV));
    }

    #[test]
    fn a_fork_bomb_and_the_processes_it_leaves_end_with_the_run() {
        let Some((_d, s)) = sandbox() else { return };
        let bomb = "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
        let r = s.run(4, bomb, b"", &short()).unwrap();
        assert!(r.wall < Duration::from_secs(7), "{:?}", r.wall);
        // A process started to outlive the run, and one that signals its
        // parent: gone with the run, and rsr untouched.
        let script = "import os, subprocess\nsubprocess.Popen(['sleep', '30'], start_new_session=True)\nos.kill(os.getppid(), 9)\nprint('still here')\n";
        let r = s.run(4, script, b"", &short()).unwrap();
        assert_eq!(text(&r.stdout), "still here\n", "{}", text(&r.stderr));
        if s.root {
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(processes_of(UID_BASE + 4), Vec::<String>::new());
        }
    }
}
