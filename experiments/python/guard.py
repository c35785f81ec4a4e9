# Runs before untrusted code in the sandbox (python3 -I -S guard.py PROGRAM): an audit hook, which the
# program cannot remove, refuses sockets, subprocesses, forks, native libraries, and writes, deletions and
# renames outside the working directory. The process limits, the user and the network namespace that the
# executor sets are the outer walls; this is the inner one.
import os
import sys

_HOME = os.path.realpath(os.getcwd())
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _inside(path):
    try:
        path = os.fsdecode(path)
    except TypeError:
        return True  # a file descriptor
    return os.path.realpath(path).startswith(_HOME + os.sep) or os.path.realpath(path) == _HOME


def _guard(event, args):
    if event.startswith(("socket.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.system", "ctypes.", "os.kill", "os.killpg")):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(m in mode for m in "wax+")) or (flags or 0) & _WRITE_FLAGS
        if writing and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the sandbox directory")
    if event in ("os.remove", "os.rmdir", "os.rename", "shutil.rmtree", "os.truncate", "os.chmod", "os.chown", "os.link", "os.symlink", "os.mkdir"):
        if not all(_inside(a) for a in args if isinstance(a, (str, bytes, os.PathLike))):
            raise PermissionError(f"sandbox: {event} outside the sandbox directory")
    if event == "import" and args and args[0] in ("ctypes", "_ctypes"):
        raise PermissionError("sandbox: ctypes is not allowed")


program = sys.argv[1]
with open(program) as f:
    source = f.read()
sys.addaudithook(_guard)
del f
exec(compile(source, program, "exec"), {"__name__": "__main__"})
