"""Writes the user list of the Dagster proxy's basic authentication (managed by dagsterops.dagster).

Reads, on stdin, a JSON map: dest, group, salt_key, rounds, check, and users, a list of
{name, password} or {name, password_hash} (a user with neither is left out). A plain password is hashed with SHA-512 crypt
(mkpasswd, the password on its stdin) under a salt derived from the user's name with a key
kept in salt_key (root only, made on first use), so that the same password gives the same
hash on every run. Passwords never reach a command line or a file. Prints {"changed": bool};
with check, changes nothing.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile

CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def salt_key(path, check):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        key = os.urandom(32)
        if not check:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(key)
        return key


def salt(key, name):
    digest = hmac.new(key, b"dagster-proxy-salt\0" + name.encode(), hashlib.sha256).digest()
    return "".join(CRYPT_ALPHABET[byte % 64] for byte in digest[:16])


def hash_password(password, name, key, rounds):
    result = subprocess.run(
        ["mkpasswd", "--method=sha-512", f"--rounds={rounds}", f"--salt={salt(key, name)}", "--stdin"],
        input=password.encode(), capture_output=True, check=True)
    return result.stdout.decode().strip()


def main():
    request = json.load(sys.stdin)
    key = salt_key(request["salt_key"], request["check"])
    lines = []
    for user in request["users"]:
        if not (user.get("password") or user.get("password_hash")):
            continue  # signs in by a client certificate or the sign-in proxy only
        digest = user.get("password_hash") or hash_password(user["password"], user["name"], key, request["rounds"])
        lines.append(f"{user['name']}:{digest}\n")
    content = "".join(lines).encode()
    dest = request["dest"]
    try:
        with open(dest, "rb") as handle:
            current = handle.read()
        stat = os.stat(dest)
    except FileNotFoundError:
        current, stat = None, None
    gid = int(subprocess.run(["getent", "group", request["group"]], capture_output=True, check=True,
                             text=True).stdout.split(":")[2])
    changed = current != content or stat.st_uid != 0 or stat.st_gid != gid or (stat.st_mode & 0o7777) != 0o640
    if changed and not request["check"]:
        descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".users.")
        try:
            os.fchown(descriptor, 0, gid)
            os.fchmod(descriptor, 0o640)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
            os.replace(temporary, dest)
        except BaseException:
            os.unlink(temporary)
            raise
    json.dump({"changed": changed}, sys.stdout)


if __name__ == "__main__":
    main()
