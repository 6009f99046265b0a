"""The files module, run as Ansible runs it: a process reading its arguments from a JSON file."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "files.py"
USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run(tmp_path: Path, files: list[dict], *, check: bool = False, diff: bool = True) -> dict:
    args = {"files": files, "_ansible_check_mode": check, "_ansible_diff": diff}
    args_file = tmp_path.parent / f"{tmp_path.name}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, str(MODULE), str(args_file)], capture_output=True, text=True, check=False)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def entry(dest: Path, **extra) -> dict:
    return {"dest": str(dest), "owner": USER, "group": GROUP, "mode": "0640", **extra}


def test_creates_directories_and_files_then_changes_nothing(tmp_path):
    conf = tmp_path / "etc"
    files = [entry(conf, state="directory", mode="0750"), entry(conf / "app.yaml", content="a: 1\n")]
    first = run(tmp_path, files)
    assert first["changed"] is True
    assert first["changed_paths"] == [str(conf), str(conf / "app.yaml")]
    assert (conf / "app.yaml").read_text() == "a: 1\n"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o750
    assert stat.S_IMODE((conf / "app.yaml").stat().st_mode) == 0o640
    second = run(tmp_path, files)
    assert second["changed"] is False
    assert second["changed_paths"] == []


def test_new_content_is_shown_in_the_diff(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("a: 1\n")
    os.chmod(path, 0o640)
    result = run(tmp_path, [entry(path, content="a: 2\n")])
    assert result["changed"] is True
    assert result["diff"] == [{"before_header": str(path), "after_header": str(path),
                               "before": "a: 1\n", "after": "a: 2\n"}]
    assert path.read_text() == "a: 2\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dagsterops-")]


def test_secret_content_stays_out_of_the_result(tmp_path):
    path = tmp_path / "app.env"
    path.write_text("PASSWORD=old-secret-value\n")
    result = run(tmp_path, [entry(path, content="PASSWORD=new-secret-value\n", secret=True)])
    assert result["changed"] is True
    assert "secret-value" not in json.dumps(result)
    assert path.read_text() == "PASSWORD=new-secret-value\n"


def test_mode_alone_is_corrected_without_rewriting(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("a: 1\n")
    os.chmod(path, 0o644)
    inode = path.stat().st_ino
    result = run(tmp_path, [entry(path, content="a: 1\n")])
    assert result["changed"] is True
    assert result["diff"][0]["before"]["mode"] == "0644"
    assert result["diff"][0]["after"]["mode"] == "0640"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino == inode


def test_check_mode_reports_and_writes_nothing(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("a: 1\n")
    os.chmod(path, 0o600)
    new_dir = tmp_path / "new"
    result = run(tmp_path, [entry(path, content="a: 2\n"), entry(new_dir, state="directory")], check=True)
    assert result["changed"] is True
    assert result["changed_paths"] == [str(path), str(new_dir)]
    assert path.read_text() == "a: 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not new_dir.exists()


def test_refused_content_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("good\n")
    checker = f"{sys.executable} -c \"import sys; sys.exit(open(sys.argv[1]).read() != 'good\\n')\" %s"
    result = run(tmp_path, [entry(path, content="bad\n", validate=checker)])
    assert result.get("failed") is True
    assert "failed validation" in result["msg"] and str(path) in result["msg"]
    assert path.read_text() == "good\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dagsterops-")]
    accepted = run(tmp_path, [entry(path, content="good\n", validate=checker)])
    assert accepted.get("failed") is not True


def test_check_mode_still_runs_the_validator(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("good\n")
    result = run(tmp_path, [entry(path, content="bad\n", validate=f"{sys.executable} -c 'raise SystemExit(1)' %s")],
                 check=True)
    assert result.get("failed") is True
    assert path.read_text() == "good\n"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"owner": "no-such-user-here"}, "user no-such-user-here does not exist"),
        ({"group": "no-such-group-here"}, "group no-such-group-here does not exist"),
        ({"mode": "rw-r--r--"}, "mode must be an octal string"),
        ({"mode": "77777"}, "out of range"),
        ({"dest": "relative/path"}, "dest must be an absolute path"),
        ({"validate": "true"}, "validate must contain %s"),
    ],
)
def test_bad_entries_are_named(tmp_path, change, expected):
    target = tmp_path / "app.yaml"
    target.write_text("old\n")
    result = run(tmp_path, [{**entry(target, content="new\n"), **change}])
    assert result.get("failed") is True
    assert expected in result["msg"]
    assert target.read_text() == "old\n"


def test_a_directory_where_a_file_goes_is_refused(tmp_path):
    (tmp_path / "app.yaml").mkdir()
    result = run(tmp_path, [entry(tmp_path / "app.yaml", content="a: 1\n")])
    assert result.get("failed") is True
    assert "is not a regular file" in result["msg"]


def test_a_file_entry_needs_content(tmp_path):
    result = run(tmp_path, [entry(tmp_path / "app.yaml")])
    assert result.get("failed") is True
    assert "needs content" in result["msg"]


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only root's writes are guarded")


@root_only
@pytest.mark.parametrize("how", ["owned by another user", "writable by its group", "writable by everyone"])
def test_refuses_to_write_through_a_directory_another_user_controls(tmp_path, how):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    if how == "owned by another user":
        os.chown(shared, pwd.getpwnam("nobody").pw_uid, 0)
    elif how == "writable by its group":
        os.chown(shared, 0, grp.getgrnam("nogroup").gr_gid)
        os.chmod(shared, 0o775)
    else:
        os.chmod(shared, 0o777)
    target = tmp_path / "target"
    target.write_text("root's\n")
    # A link planted by the other user where the file is to be written.
    os.symlink(target, shared / "app.yaml")
    result = run(tmp_path, [entry(shared / "app.yaml", content="planted\n", owner="root", group="root")])
    assert result["failed"] is True
    assert "refusing to write as root through a directory another user can change" in result["msg"]
    assert str(shared) in result["msg"]
    assert target.read_text() == "root's\n"
    assert (shared / "app.yaml").is_symlink()


@root_only
def test_a_directory_of_another_user_is_created_but_nothing_is_written_in_it(tmp_path):
    own = tmp_path / "storage"
    created = run(tmp_path, [entry(own, state="directory", owner="nobody", group="nogroup", mode="0750")])
    assert created["changed"] is True
    assert (own.stat().st_uid, stat.S_IMODE(own.stat().st_mode)) == (pwd.getpwnam("nobody").pw_uid, 0o750)
    inside = run(tmp_path, [entry(own / "file", content="x\n", owner="root", group="root")])
    assert inside["failed"] is True and not (own / "file").exists()


@root_only
def test_owner_and_mode_are_set_on_the_entry_not_on_a_link_target(tmp_path):
    target = tmp_path / "target"
    target.write_text("x\n")
    os.chmod(target, 0o600)
    link = tmp_path / "link"
    os.symlink(target, link)
    # An existing link where a file is wanted is refused, and its target keeps its mode.
    result = run(tmp_path, [entry(link, content="x\n", mode="0644")])
    assert result["failed"] is True
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def run_with_secrets(tmp_path: Path, files: list[dict], secrets: list[str]) -> dict:
    args = {"files": files, "secret_contents": secrets, "_ansible_check_mode": False, "_ansible_diff": True}
    args_file = tmp_path.parent / f"{tmp_path.name}-args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, str(MODULE), str(args_file)], capture_output=True, text=True, check=False)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def test_a_secret_travels_in_the_no_log_argument(tmp_path):
    path = tmp_path / "app.env"
    result = run_with_secrets(tmp_path, [entry(path, secret=True, secret_index=0)], ["PASSWORD=hunter2\n"])
    assert result["changed"] is True
    assert path.read_text() == "PASSWORD=hunter2\n"
    assert "hunter2" not in json.dumps(result)


def test_a_secret_index_that_names_nothing_is_refused(tmp_path):
    result = run_with_secrets(tmp_path, [entry(tmp_path / "app.env", secret=True, secret_index=1)], ["x\n"])
    assert result["failed"] is True and "secret_index" in result["msg"]
