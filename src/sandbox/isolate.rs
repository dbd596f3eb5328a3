//! The system calls that isolate one run, made in the forked child before
//! Python starts. Everything is prepared in [`Plan::new`] (paths as C
//! strings, the maps, the limits) so that [`Plan::enter`] only makes
//! system calls: after a fork in a threaded program nothing may allocate.
//!
//! The child unshares its namespaces and builds the new root, then forks
//! once more: the grandchild is PID 1 of the new PID namespace (it mounts
//! its `/proc`, pivots into the new root, takes its limits and its uid, and
//! becomes Python); the child only waits for it and ends the same way (exit
//! status, or the same signal), so that killing the child kills the run.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use super::{Limits, c_path};

/// What to put at a path of the new root.
enum Kind {
    /// A read-only bind of a host directory.
    Dir,
    /// A bind of a host file (a device node).
    File,
    /// A symbolic link with this target (`/bin -> usr/bin`).
    Link(CString),
}

struct Bind {
    source: CString,
    target: CString,
    /// Directories to create first, outermost first.
    parents: Vec<CString>,
    kind: Kind,
}

/// Everything [`Plan::enter`] needs, prepared before the fork.
pub(super) struct Plan {
    newroot: CString,
    binds: Vec<Bind>,
    work_source: CString,
    work: CString,
    tmp: CString,
    proc_dir: CString,
    old: CString,
    /// `Some(uid)`: run as this uid (rsr is root); `None`: a user namespace.
    uid: Option<u32>,
    /// `0 <uid> 1` and `0 <gid> 1` for the user namespace.
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    limits: [(libc::__rlimit_resource_t, u64); 6],
}

/// The host directories a Python program needs, read-only.
const SYSTEM: &[&str] = &[
    "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc",
];
/// Device nodes bound into `/dev`.
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"];

impl Plan {
    /// The plan of a run whose root is built in `newroot` (an empty host
    /// directory), with `work` as `/work` and the Python installation at
    /// `prefix`.
    pub(super) fn new(
        newroot: &Path,
        work: &Path,
        prefix: &Path,
        uid: Option<u32>,
        limits: &Limits,
    ) -> io::Result<Self> {
        let inside = |p: &Path| c_path(&newroot.join(p.strip_prefix("/").unwrap_or(p)));
        let mut binds = Vec::new();
        let mut add = |host: &Path, kind: Option<Kind>| -> io::Result<()> {
            let meta = match std::fs::symlink_metadata(host) {
                Ok(m) => m,
                Err(_) => return Ok(()),
            };
            let kind = match kind {
                Some(k) => k,
                None if meta.file_type().is_symlink() => {
                    Kind::Link(c_path(&std::fs::read_link(host)?)?)
                }
                None => Kind::Dir,
            };
            let mut parents = Vec::new();
            let mut p = PathBuf::from("/");
            let comps: Vec<_> = host.components().skip(1).collect();
            for c in &comps[..comps.len().saturating_sub(1)] {
                p.push(c);
                parents.push(inside(&p)?);
            }
            binds.push(Bind {
                source: c_path(host)?,
                target: inside(host)?,
                parents,
                kind,
            });
            Ok(())
        };
        for d in SYSTEM {
            add(Path::new(d), None)?;
        }
        // The Python installation, unless a system directory holds it.
        if !SYSTEM
            .iter()
            .any(|d| prefix.starts_with(d) && !Path::new(d).is_symlink())
        {
            add(prefix, Some(Kind::Dir))?;
        }
        for d in DEVICES {
            add(Path::new(d), Some(Kind::File))?;
        }
        // SAFETY: getuid/getgid have no preconditions.
        let (me, my_group) = unsafe { (libc::getuid(), libc::getgid()) };
        let secs = |d: std::time::Duration| d.as_secs().max(1);
        Ok(Self {
            newroot: c_path(newroot)?,
            binds,
            work_source: c_path(work)?,
            work: inside(Path::new("/work"))?,
            tmp: inside(Path::new("/tmp"))?,
            proc_dir: inside(Path::new("/proc"))?,
            old: inside(Path::new("/.oldroot"))?,
            uid,
            uid_map: format!("0 {me} 1\n").into_bytes(),
            gid_map: format!("0 {my_group} 1\n").into_bytes(),
            limits: [
                (libc::RLIMIT_CPU, secs(limits.cpu)),
                (libc::RLIMIT_AS, limits.memory),
                (libc::RLIMIT_FSIZE, limits.file_size),
                (libc::RLIMIT_NOFILE, limits.files),
                (libc::RLIMIT_NPROC, limits.processes),
                (libc::RLIMIT_CORE, 0),
            ],
        })
    }

    /// Isolates the calling (forked) process and returns in the grandchild
    /// that becomes Python; the child never returns.
    pub(super) fn enter(&self) -> io::Result<()> {
        // SAFETY (whole function): system calls on prepared, NUL-terminated
        // buffers; no allocation.
        unsafe {
            check(libc::setsid())?;
            if self.uid.is_none() {
                check(libc::unshare(libc::CLONE_NEWUSER))?;
                write_file(c"/proc/self/setgroups", b"deny")?;
                write_file(c"/proc/self/uid_map", &self.uid_map)?;
                write_file(c"/proc/self/gid_map", &self.gid_map)?;
            }
            check(libc::unshare(
                libc::CLONE_NEWNS
                    | libc::CLONE_NEWNET
                    | libc::CLONE_NEWPID
                    | libc::CLONE_NEWIPC
                    | libc::CLONE_NEWUTS,
            ))?;
            mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
            mount(
                Some(c"tmpfs"),
                &self.newroot,
                Some(c"tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(c"size=4m,mode=0755"),
            )?;
            for b in &self.binds {
                for p in &b.parents {
                    mkdir(p)?;
                }
                match &b.kind {
                    Kind::Dir => {
                        mkdir(&b.target)?;
                        mount(
                            Some(&b.source),
                            &b.target,
                            None,
                            libc::MS_BIND | libc::MS_REC,
                            None,
                        )?;
                        read_only(&b.source, &b.target)?;
                    }
                    Kind::File => {
                        let fd =
                            libc::open(b.target.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
                        check(fd)?;
                        libc::close(fd);
                        mount(Some(&b.source), &b.target, None, libc::MS_BIND, None)?;
                    }
                    Kind::Link(to) => {
                        check(libc::symlink(to.as_ptr(), b.target.as_ptr()))?;
                    }
                }
            }
            mkdir(&self.work)?;
            mount(
                Some(&self.work_source),
                &self.work,
                None,
                libc::MS_BIND,
                None,
            )?;
            mount(
                None,
                &self.work,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV,
                None,
            )?;
            mkdir(&self.tmp)?;
            mount(
                Some(c"tmpfs"),
                &self.tmp,
                Some(c"tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(c"size=16m,mode=1777"),
            )?;
            mkdir(&self.proc_dir)?;
            mkdir(&self.old)?;
            let rlimit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            check(libc::setrlimit(libc::RLIMIT_CORE, &rlimit))?;
            let child = check(libc::fork())?;
            if child != 0 {
                wait_and_relay(child);
            }
            self.become_program()
        }
    }

    /// In PID 1 of the new namespace: its `/proc` (mounted while the host's
    /// is still visible, which a user namespace requires), the pivot into
    /// the new root, the limits, the uid (or no capabilities), no new
    /// privileges.
    unsafe fn become_program(&self) -> io::Result<()> {
        // SAFETY: system calls on prepared data, as in `enter`.
        unsafe {
            check(libc::setsid())?;
            mount(
                Some(c"proc"),
                &self.proc_dir,
                Some(c"proc"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                None,
            )?;
            check(libc::syscall(
                libc::SYS_pivot_root,
                self.newroot.as_ptr(),
                self.old.as_ptr(),
            ) as libc::c_int)?;
            check(libc::chdir(c"/".as_ptr()))?;
            check(libc::umount2(c"/.oldroot".as_ptr(), libc::MNT_DETACH))?;
            check(libc::rmdir(c"/.oldroot".as_ptr()))?;
            mount(
                None,
                c"/",
                None,
                libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV,
                None,
            )?;
            check(libc::chdir(c"/work".as_ptr()))?;
            for (resource, value) in self.limits {
                let soft = value;
                // CPU: SIGXCPU at the limit, SIGKILL a second later.
                let hard = if resource == libc::RLIMIT_CPU {
                    value + 1
                } else {
                    value
                };
                let r = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                check(libc::setrlimit(resource, &r))?;
            }
            match self.uid {
                Some(uid) => {
                    check(libc::setgroups(0, std::ptr::null()))?;
                    check(libc::setresgid(uid, uid, uid))?;
                    check(libc::setresuid(uid, uid, uid))?;
                }
                None => drop_capabilities()?,
            }
            // After the uid changes, which clear it: killing the waiting
            // parent (the run's wall time) kills the run.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        Ok(())
    }
}

/// Waits for the run's init and ends the same way; never returns.
unsafe fn wait_and_relay(child: libc::pid_t) -> ! {
    // SAFETY: system calls only; this process holds nothing it must free.
    unsafe {
        // The std library's pipes and every other descriptor: only the
        // grandchild keeps the run's stdin, stdout and stderr.
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            for fd in 0..1024 {
                libc::close(fd);
            }
        }
        let mut status = 0;
        while libc::waitpid(child, &mut status, 0) < 0 {
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// Drops every capability for good (in a user namespace the program is
/// root inside: without this it could undo the mounts).
unsafe fn drop_capabilities() -> io::Result<()> {
    // SECBIT_NOROOT | _LOCKED | SECBIT_NO_SETUID_FIXUP | _LOCKED |
    // SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | _LOCKED.
    const SECUREBITS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80;
    // SAFETY: prctl and capset with valid arguments.
    unsafe {
        check(libc::prctl(libc::PR_SET_SECUREBITS, SECUREBITS))?;
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap) != 0
                && *libc::__errno_location() == libc::EINVAL
            {
                break;
            }
        }
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let header = Header {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()) as libc::c_int)?;
    }
    Ok(())
}

/// Remounts a bind read-only, keeping the flags the source mount has
/// (a user namespace may not clear them).
unsafe fn read_only(source: &CString, target: &CString) -> io::Result<()> {
    // SAFETY: statvfs into a zeroed struct; mount on prepared strings.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        let mut flags =
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
        if libc::statvfs(source.as_ptr(), &mut st) == 0 {
            let f = st.f_flag;
            for (st_flag, ms_flag) in [
                (libc::ST_NOEXEC, libc::MS_NOEXEC),
                (libc::ST_NOATIME, libc::MS_NOATIME),
                (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
                (libc::ST_RELATIME, libc::MS_RELATIME),
            ] {
                if f & st_flag != 0 {
                    flags |= ms_flag;
                }
            }
        }
        mount(None, target, None, flags, None)
    }
}

unsafe fn mount(
    source: Option<&std::ffi::CStr>,
    target: &std::ffi::CStr,
    fstype: Option<&std::ffi::CStr>,
    flags: libc::c_ulong,
    data: Option<&std::ffi::CStr>,
) -> io::Result<()> {
    let ptr = |s: Option<&std::ffi::CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: NUL-terminated strings or null, as mount(2) takes them.
    check(unsafe {
        libc::mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    })
    .map(drop)
}

unsafe fn mkdir(path: &CString) -> io::Result<()> {
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::mkdir(path.as_ptr(), 0o755) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(e)
    }
}

unsafe fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: open/write/close on a NUL-terminated path and a live buffer.
    unsafe {
        let fd = check(libc::open(path.as_ptr(), libc::O_WRONLY))?;
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if n != bytes.len() as isize {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}
