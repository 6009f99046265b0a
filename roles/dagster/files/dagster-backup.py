"""Backups and restores of a Dagster instance, run as root with the system's python3.

The database is dumped and restored by pg_dump, pg_restore and psql running as
the dagster user through systemd-run, which reads the services' environment file
on the host itself: no password is on any command line. The bytes of a dump or
an archive reach the backup directory through a file this root process opens
itself (O_NOFOLLOW | O_CREAT | O_EXCL, mode 0600) in a directory whose every
component is root-owned and writable by root only, and which is passed to the
dagster process as its standard output.

    dagster-backup.py backup [--label L] [--home]   dump the database (and archive the storage), then rotate
    dagster-backup.py backup-home                   archive DAGSTER_HOME/storage, then rotate
    dagster-backup.py verify-dump FILE              refuse a file that is not a whole custom-format Dagster dump
    dagster-backup.py verify-home FILE              refuse an archive that is not a storage archive of this role
    dagster-backup.py restore-database FILE         verify, take a safety dump, restore in one transaction
    dagster-backup.py restore-home FILE             verify, then unpack as the dagster user

The settings (backup directory, how many to keep, the database to reach, the
systemd-run prefix) are read from a JSON file written by the dagster role.
Each command prints one JSON object on success; errors go to stderr, exit 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import time

DEFAULT_CONFIG = "/etc/dagster/backup.json"
STAMP = "%Y%m%dT%H%M%SZ"
DUMP = re.compile(r"^dagster-(\d{8}T\d{6}Z)-([A-Za-z0-9._-]+)\.pgc$")
SAFETY = re.compile(r"^safety-(\d{8}T\d{6}Z)-([A-Za-z0-9._-]+)\.pgc$")
HOME = re.compile(r"^home-(\d{8}T\d{6}Z)\.tar\.gz$")
LABEL = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# Dumps taken before a change of release: rotation always keeps the newest one.
PRE_UPGRADE = "before-"
# A pg_restore --list line of the table every Dagster database has.
RUNS_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE \S+ runs ", re.MULTILINE)
CHUNK = 1 << 20


class Refused(Exception):
    """A check failed: nothing was changed."""


def log(message):
    print(message, file=sys.stderr, flush=True)


# --- directories and files, opened without following links ---------------------------------------


def _check_root_dir(fd, path):
    info = os.fstat(fd)
    if not stat.S_ISDIR(info.st_mode):
        raise Refused(f"{path} is not a directory")
    if info.st_uid != 0 or info.st_mode & 0o022:
        raise Refused(
            f"{path} must be owned by root and writable by root only "
            f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o})"
        )


def open_root_dir(path, create_mode=None):
    """An fd of `path`, reached from / one component at a time with O_NOFOLLOW.

    Every component must be a root-owned directory writable by root only, so
    no other user can swap anything under it. With create_mode, a missing last
    component is created root:root with that mode; an existing one gets that
    owner and mode (a directory of an older release may belong to dagster)."""
    if not os.path.isabs(path) or ".." in path.split("/"):
        raise Refused(f"{path} must be an absolute path without '..'")
    parts = [part for part in path.split("/") if part]
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", flags)
    walked = ""
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            walked += "/" + part
            if last and create_mode is not None:
                try:
                    os.mkdir(part, create_mode, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as error:
                raise Refused(f"{walked}: {error.strerror} (a directory is required, not a link)") from error
            os.close(fd)
            fd = child
            if last and create_mode is not None:
                info = os.fstat(fd)
                if info.st_uid != 0 or info.st_gid != 0:
                    os.fchown(fd, 0, 0)
                if stat.S_IMODE(info.st_mode) != create_mode:
                    os.fchmod(fd, create_mode)
            _check_root_dir(fd, walked)
        return fd
    except BaseException:
        os.close(fd)
        raise


def create_private(dir_fd, name):
    """A new file, root:root 0600, that must not exist yet (no link is followed)."""
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)


def open_input(path):
    """A dump or an archive to read: a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise Refused(f"{path}: {error.strerror}") from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused(f"{path} is not a regular file")
    return fd


# --- commands as the dagster user -------------------------------------------------------------------


class Settings:
    def __init__(self, path):
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        self.backup_dir = data["backup_dir"]
        self.keep = int(data["keep"])
        if self.keep < 1:
            raise Refused(f"keep must be at least 1, got {self.keep}")
        self.home = data["home"]
        self.storage = data["home"].rstrip("/") + "/storage"
        self.user = data["user"]
        self.service_exec = list(data["service_exec"])
        self.password_env = data.get("password_env") or ""
        postgres = data["postgres"]
        fields = {"host": postgres["host"], "port": str(postgres["port"]), "user": postgres["user"],
                  "dbname": postgres["database"]}
        fields.update({str(k): str(v) for k, v in (postgres.get("params") or {}).items()})
        self.conninfo = " ".join(f"{key}={_conninfo_value(value)}" for key, value in fields.items())

    def as_dagster(self, command):
        """argv running `command` as the dagster user with the services' environment.

        libpq reads PGPASSWORD: a small Python program copies it from the
        variable the environment file defines, inside the dagster process; the
        command line holds only the variable's name. No argument holds a `$`:
        systemd substitutes variables in a unit's command line itself."""
        if not self.password_env:
            return self.service_exec + list(command)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.password_env):
            raise Refused(f"password_env: {self.password_env!r} is not a variable name")
        return self.service_exec + ["/usr/bin/python3", "-c", COPY_PASSWORD, self.password_env] + list(command)


# Run as the dagster user: PGPASSWORD from the variable named first, then the command.
COPY_PASSWORD = (
    "import os, sys; "
    "os.environ.update({'PGPASSWORD': os.environ[sys.argv[1]]} if sys.argv[1] in os.environ else {}); "
    "os.execvp(sys.argv[2], sys.argv[2:])"
)


def _conninfo_value(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, what="command"):
    result = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        raise Refused(f"{what} failed (exit {result.returncode}): {result.stderr.decode(errors='replace').strip()}")
    return result


# --- verification -----------------------------------------------------------------------------------


def verify_dump(path, dagster=True):
    """A whole custom-format dump (of a Dagster database: its table of contents
    lists the runs table), every byte of its data read back."""
    fd = open_input(path)
    try:
        if os.pread(fd, 5, 0) != b"PGDMP":
            raise Refused(f"{path} is not a custom-format PostgreSQL dump (pg_dump --format=custom)")
    finally:
        os.close(fd)
    listing = subprocess.run(["pg_restore", "--list", "--", path], capture_output=True, check=False)
    if listing.returncode != 0:
        raise Refused(f"{path}: pg_restore --list failed: {listing.stderr.decode(errors='replace').strip()}")
    if dagster and not RUNS_TABLE.search(listing.stdout.decode(errors="replace")):
        raise Refused(f"{path} holds no Dagster runs table")
    # The table of contents is at the start of the file: a truncated dump lists
    # fine. Reading every entry's data shows the truncation.
    whole = subprocess.run(["pg_restore", "--file=/dev/null", "--", path], capture_output=True, check=False)
    if whole.returncode != 0:
        raise Refused(f"{path} is incomplete or damaged: {whole.stderr.decode(errors='replace').strip()}")
    return {"dump": path, "entries": len(listing.stdout.splitlines())}


def _member_error(member):
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or ".." in parts:
        return "an absolute path or '..'"
    if parts[0] != "storage":
        return "outside storage/"
    if member.islnk():
        return "a hard link"
    if not (member.isfile() or member.isdir() or member.issym()):
        return "not a file, a directory or a symbolic link"
    return None


def verify_home(path):
    """A gzip tar archive whose members all live under storage/."""
    fd = open_input(path)
    try:
        with os.fdopen(fd, "rb") as handle, tarfile.open(fileobj=handle, mode="r:gz") as archive:
            members = 0
            for member in archive:
                error = _member_error(member)
                if error:
                    raise Refused(f"{path}: member {member.name!r} is {error}")
                members += 1
    except (tarfile.TarError, OSError, EOFError) as error:
        raise Refused(f"{path} is not a gzip tar archive of DAGSTER_HOME/storage: {error}") from error
    if members == 0:
        raise Refused(f"{path} is empty")
    return {"archive": path, "members": members}


# --- backup and rotation ----------------------------------------------------------------------------


def _new_file(dir_fd, pattern_name):
    """(final name, temporary name, fd); a name taken this second waits for the next."""
    for _ in range(3):
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime(STAMP)
        name = pattern_name(stamp)
        partial = f".{name}.partial"
        try:
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            try:
                return name, partial, create_private(dir_fd, partial)
            except FileExistsError:
                pass
        time.sleep(1)
    raise Refused("no free name for the new file in the backup directory")


def _finish(dir_fd, fd, partial, name, check, settings):
    os.fsync(fd)
    os.close(fd)
    try:
        # Every component of the directory is root-owned (open_root_dir): the path is stable.
        check(f"{settings.backup_dir.rstrip('/')}/{partial}")
    except Exception:
        os.unlink(partial, dir_fd=dir_fd)
        raise
    os.rename(partial, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)
    return f"{settings.backup_dir.rstrip('/')}/{name}"


def dump_database(settings, dir_fd, prefix, label):
    if not LABEL.match(label):
        raise Refused(f"label {label!r}: letters, digits, '.', '_' and '-' only")
    name, partial, fd = _new_file(dir_fd, lambda stamp: f"{prefix}-{stamp}-{label}.pgc")
    try:
        command = settings.as_dagster(["pg_dump", "--format=custom", "--no-password", "--dbname", settings.conninfo])
        _run(command, stdout=fd, what="pg_dump")
    except Exception:
        os.close(fd)
        os.unlink(partial, dir_fd=dir_fd)
        raise
    # A safety dump is taken of whatever the database holds, even nothing.
    return _finish(dir_fd, fd, partial, name, lambda path: verify_dump(path, dagster=prefix != "safety"), settings)


def ensure_storage(settings):
    """DAGSTER_HOME/storage, dagster:dagster 0750: created by root only under a
    root-owned parent writable by root only, otherwise by the dagster user itself."""
    info = os.stat(settings.home, follow_symlinks=False)
    if not stat.S_ISDIR(info.st_mode):
        raise Refused(f"{settings.home} is not a directory")
    if info.st_uid != 0 or info.st_mode & 0o022:
        _run(settings.service_exec + ["mkdir", "-p", "-m", "0750", "--", settings.storage], what="mkdir storage")
        return
    home_fd = os.open(settings.home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            os.stat("storage", dir_fd=home_fd, follow_symlinks=False)
            return
        except FileNotFoundError:
            pass
        import pwd  # noqa: PLC0415 - only needed here

        account = pwd.getpwnam(settings.user)
        os.mkdir("storage", 0o700, dir_fd=home_fd)
        storage_fd = os.open("storage", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=home_fd)
        try:
            os.fchown(storage_fd, account.pw_uid, account.pw_gid)
            os.fchmod(storage_fd, 0o750)
        finally:
            os.close(storage_fd)
    finally:
        os.close(home_fd)


def archive_home(settings, dir_fd):
    ensure_storage(settings)
    name, partial, fd = _new_file(dir_fd, lambda stamp: f"home-{stamp}.tar.gz")
    command = settings.service_exec + ["tar", "-C", settings.home, "--create", "--gzip", "--file=-", "storage"]
    result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.PIPE, check=False)
    # GNU tar exits 1 when a file changed while it was read: the archive is still whole.
    if result.returncode not in (0, 1):
        os.close(fd)
        os.unlink(partial, dir_fd=dir_fd)
        raise Refused(f"tar failed (exit {result.returncode}): {result.stderr.decode(errors='replace').strip()}")
    if result.returncode == 1:
        log(result.stderr.decode(errors="replace").strip())
    return _finish(dir_fd, fd, partial, name, verify_home, settings)


def rotate(settings, dir_fd, keep_names):
    """Remove all but the newest `keep` of each kind; never the names in keep_names
    nor the newest dump taken before an upgrade."""
    dumps, homes, safeties = [], [], []
    for name in os.listdir(dir_fd):
        for pattern, found in ((DUMP, dumps), (HOME, homes), (SAFETY, safeties)):
            match = pattern.match(name)
            if match:
                found.append((match.group(1), name, match.groups()[-1] if pattern is not HOME else ""))
    kept = set(keep_names)
    for found in (dumps, homes, safeties):
        found.sort(reverse=True)
        kept.update(name for _, name, _ in found[: settings.keep])
    pre_upgrade = [name for _, name, label in dumps if label.startswith(PRE_UPGRADE)]
    if pre_upgrade:
        kept.add(pre_upgrade[0])
    removed = []
    for found in (dumps, homes, safeties):
        for _, name, _ in found:
            if name not in kept:
                os.unlink(name, dir_fd=dir_fd)
                removed.append(name)
    return sorted(removed)


# --- commands ---------------------------------------------------------------------------------------


def cmd_backup(settings, args):
    dir_fd = open_root_dir(settings.backup_dir, create_mode=0o700)
    try:
        result = {"dump": dump_database(settings, dir_fd, "dagster", args.label)}
        keep = [os.path.basename(result["dump"])]
        if args.home:
            result["home"] = archive_home(settings, dir_fd)
            keep.append(os.path.basename(result["home"]))
        result["removed"] = rotate(settings, dir_fd, keep)
        return result
    finally:
        os.close(dir_fd)


def cmd_backup_home(settings, args):
    dir_fd = open_root_dir(settings.backup_dir, create_mode=0o700)
    try:
        result = {"home": archive_home(settings, dir_fd)}
        result["removed"] = rotate(settings, dir_fd, [os.path.basename(result["home"])])
        return result
    finally:
        os.close(dir_fd)


def cmd_restore_database(settings, args):
    checked = verify_dump(args.file)
    dir_fd = open_root_dir(settings.backup_dir, create_mode=0o700)
    try:
        safety = dump_database(settings, dir_fd, "safety", "before-restore")
        rotate(settings, dir_fd, [os.path.basename(safety)])
    finally:
        os.close(dir_fd)
    log(f"safety dump: {safety}")
    source = open_input(args.file)
    # One psql session, one transaction: the drop of what the role owns and the
    # whole dump. COMMIT is sent only once pg_restore has read the dump to its end;
    # an error stops psql and the transaction rolls back, leaving the database as it was.
    psql = subprocess.Popen(
        settings.as_dagster(["psql", "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
                             "--dbname", settings.conninfo, "--file=-"]),
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    restore = subprocess.Popen(["pg_restore", "--no-owner", "--file=-"], stdin=source,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(source)
    broken = False
    try:
        psql.stdin.write(b"BEGIN;\nDROP OWNED BY CURRENT_USER;\n")
        while chunk := restore.stdout.read(CHUNK):
            psql.stdin.write(chunk)
        restore_rc = restore.wait()
        if restore_rc == 0:
            psql.stdin.write(b"COMMIT;\n")
    except BrokenPipeError:
        broken = True
        restore.kill()
        restore_rc = restore.wait()
    try:
        psql.stdin.close()
    except BrokenPipeError:
        broken = True
    psql_errors = psql.stderr.read().decode(errors="replace").strip()
    psql_rc = psql.wait()
    restore_errors = restore.stderr.read().decode(errors="replace").strip()
    if restore_rc != 0 and not broken:
        raise Refused(f"pg_restore failed reading {args.file}, nothing committed: {restore_errors}")
    if psql_rc != 0 or broken:
        raise Refused(f"the restore failed and was rolled back, the database is as it was: {psql_errors}")
    return {"restored": args.file, "entries": checked["entries"], "safety_dump": safety}


def cmd_restore_home(settings, args):
    checked = verify_home(args.file)
    ensure_storage(settings)
    source = open_input(args.file)
    try:
        # As the dagster user, owners from the archive ignored: empty storage/, then unpack.
        script = ('find storage -mindepth 1 -delete && '
                  'exec tar --extract --gzip --file=- --no-same-owner --no-same-permissions '
                  '--no-overwrite-dir --delay-directory-restore storage')
        # systemd-run starts it in DAGSTER_HOME (--working-directory).
        command = settings.service_exec + ["/bin/sh", "-c", script]
        _run(command, stdin=source, what="unpacking the archive")
    finally:
        os.close(source)
    return {"restored": args.file, "members": checked["members"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    commands = parser.add_subparsers(dest="command", required=True)
    backup = commands.add_parser("backup")
    backup.add_argument("--label", default="manual")
    backup.add_argument("--home", action="store_true", help="archive DAGSTER_HOME/storage as well")
    commands.add_parser("backup-home")
    for name in ("verify-dump", "verify-home", "restore-database", "restore-home"):
        commands.add_parser(name).add_argument("file")
    args = parser.parse_args(argv)
    os.umask(0o077)
    try:
        if args.command == "verify-dump":
            result = verify_dump(args.file)
        elif args.command == "verify-home":
            result = verify_home(args.file)
        else:
            settings = Settings(args.config)
            handler = {"backup": cmd_backup, "backup-home": cmd_backup_home, "restore-database": cmd_restore_database,
                       "restore-home": cmd_restore_home}[args.command]
            result = handler(settings, args)
    except Refused as error:
        log(f"refused: {error}")
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
