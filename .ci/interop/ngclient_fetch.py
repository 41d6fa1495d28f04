#!/usr/bin/env python3
"""Fetch a repo-tool repository with python-tuf's ngclient and print what it verified.

Used by repo-tools/tests/interop.rs. Starting from a trusted root.json, it refreshes the
metadata (walking N.root.json, timestamp, N.snapshot.json, N.targets.json) and downloads every
target that the verified targets metadata lists, as `<sha256>.<name>` from the targets URL.

Prints one JSON object on stdout:

    {"ok": bool,
     "root_version": int, "timestamp_version": int, "snapshot_version": int, "targets_version": int,
     "expires": {"root": str, "timestamp": str, "snapshot": str, "targets": str},
     "targets": {name: {"length": int, "sha256": str}},   # downloaded and verified
     "failed": {name: "ExceptionType: message"},          # refused targets
     "error": "ExceptionType: message"}                    # refresh refused (no targets then)

Exit status: 0 if the refresh and every download verified, 1 if python-tuf refused anything,
2 on a usage error.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile

from tuf.api.metadata import Metadata
from tuf.ngclient import Updater


def describe(exc):
    return f"{type(exc).__name__}: {exc}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trusted-root", required=True, help="the root.json to start from")
    parser.add_argument("--metadata-url", required=True, help="<base>/<variant>/<arch>/")
    parser.add_argument("--targets-url", required=True, help="<base>/targets/")
    parser.add_argument("--work-dir", help="where metadata and targets go (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or tmp
        metadata_dir = os.path.join(work, "metadata")
        target_dir = os.path.join(work, "targets")
        os.makedirs(metadata_dir, exist_ok=True)
        os.makedirs(target_dir, exist_ok=True)
        with open(args.trusted_root, "rb") as f:
            bootstrap = f.read()

        summary = {"ok": False, "targets": {}, "failed": {}}
        updater = Updater(
            metadata_dir=metadata_dir,
            metadata_base_url=args.metadata_url,
            target_dir=target_dir,
            target_base_url=args.targets_url,
            bootstrap=bootstrap,
        )
        try:
            updater.refresh()
        except Exception as exc:  # python-tuf's refusal is the result we report
            summary["error"] = describe(exc)
            print(json.dumps(summary, indent=2, sort_keys=True))
            return 1

        # The refreshed metadata that ngclient verified and persisted.
        roles = {}
        for role in ("root", "timestamp", "snapshot", "targets"):
            roles[role] = Metadata.from_file(os.path.join(metadata_dir, f"{role}.json")).signed
            summary[f"{role}_version"] = roles[role].version
        summary["expires"] = {
            role: signed.expires.strftime("%Y-%m-%dT%H:%M:%SZ") for role, signed in roles.items()
        }

        for name in sorted(roles["targets"].targets):
            try:
                info = updater.get_targetinfo(name)
                if info is None:
                    raise LookupError(f"target '{name}' not found by get_targetinfo")
                path = updater.download_target(info, os.path.join(target_dir, name))
                with open(path, "rb") as f:
                    data = f.read()
                summary["targets"][name] = {
                    "length": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            except Exception as exc:  # a refused target is reported by name
                summary["failed"][name] = describe(exc)

        summary["ok"] = not summary["failed"]
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
