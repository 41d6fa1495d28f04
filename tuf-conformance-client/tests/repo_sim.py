#!/usr/bin/env python3
"""A TUF repository written with python-tuf's metadata API, changed step by step by the tests.

Usage: repo_sim.py DIR OPS

DIR/metadata/ and DIR/targets/ are what is served; DIR/sim/ keeps the current metadata and
the key names between runs. OPS is a JSON list of operations, applied in order:

  ["init", {"consistent_snapshot": true}]   root v1 (keys root-1, timestamp-1, snapshot-1,
                                            targets-1, threshold 1) and every role at v1
  ["add_key", ROLE, NAME]                   add key NAME to a top-level role in root
  ["remove_key", ROLE, NAME]                remove it
  ["threshold", ROLE, N]                    set a top-level role's threshold in root
  ["bump_root", {"sign_with": [NAMES]}]     root version + 1, signed by the previous and the new
                                            root keys (or only NAMES), written as N.root.json
  ["expires", ROLE, DAYS]                   expiry DAYS from now (negative: in the past)
  ["version", ROLE, N]                      set the version (committed without a bump)
  ["add_target", ROLE, PATH, CONTENT]       list a target in ROLE and store its file
  ["corrupt_target", PATH, CONTENT]         replace a stored target file, metadata unchanged
  ["delegate", PARENT, NAME, {"keys": [NAMES], "threshold": N, "paths": [PATTERNS] or
               "path_hash_prefixes": [PREFIXES], "terminating": BOOL}]
  ["commit"]                                sign every changed targets role (version + 1 unless
                                            set), then snapshot and timestamp
  ["sign_with", ROLE, [NAMES]]              the next commit signs ROLE with these keys only

Keys are ed25519, derived from their names, so every run can sign again.
"""

import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

TOP = ["root", "timestamp", "snapshot", "targets"]


def signer(name):
    seed = hashlib.sha256(name.encode()).digest()
    return CryptoSigner(Ed25519PrivateKey.from_private_bytes(seed))


def expiry(days):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now + timedelta(days=days)


class Sim:
    def __init__(self, base):
        self.base = base
        self.sim = os.path.join(base, "sim")
        self.meta_dir = os.path.join(base, "metadata")
        self.targets_dir = os.path.join(base, "targets")
        self.state = {"consistent_snapshot": True, "keynames": {}, "dirty": [],
                      "pinned": [], "sign_with": {}, "prev_root_keys": []}
        self.md = {}

    # State between runs.
    def load(self):
        with open(os.path.join(self.sim, "state.json")) as f:
            self.state = json.load(f)
        for name in os.listdir(self.sim):
            if name.endswith(".md.json"):
                role = name[: -len(".md.json")]
                self.md[role] = Metadata.from_file(os.path.join(self.sim, name))

    def save(self):
        os.makedirs(self.sim, exist_ok=True)
        for role, md in self.md.items():
            md.to_file(os.path.join(self.sim, role + ".md.json"), JSONSerializer(compact=True))
        with open(os.path.join(self.sim, "state.json"), "w") as f:
            json.dump(self.state, f)

    # Keys.
    def key(self, name):
        key = signer(name).public_key
        self.state["keynames"][key.keyid] = name
        return key

    def names(self, keyids):
        return [self.state["keynames"][k] for k in keyids]

    def role_key_names(self, role):
        if role in TOP:
            return self.names(self.md["root"].signed.roles[role].keyids)
        for parent in self.md.values():
            d = getattr(parent.signed, "delegations", None)
            if d is not None and d.roles and role in d.roles:
                return self.names(d.roles[role].keyids)
        raise SystemExit(f"no role {role}")

    def sign(self, role, names=None):
        md = self.md[role]
        md.signatures.clear()
        names = names or self.state["sign_with"].pop(role, None) or self.role_key_names(role)
        for name in names:
            md.sign(signer(name), append=True)

    # Files.
    def write(self, filename, md):
        os.makedirs(self.meta_dir, exist_ok=True)
        md.to_file(os.path.join(self.meta_dir, filename), JSONSerializer(compact=False))

    def meta_name(self, role):
        from urllib.parse import quote

        name = quote(role, "")
        if self.state["consistent_snapshot"] and role != "timestamp":
            return f"{self.md[role].signed.version}.{name}.json"
        return f"{name}.json"

    def meta_file(self, role):
        data = self.md[role].to_bytes(JSONSerializer(compact=False))
        return MetaFile(
            version=self.md[role].signed.version,
            length=len(data),
            hashes={"sha256": hashlib.sha256(data).hexdigest()},
        )

    def store_target(self, path, content):
        data = content.encode()
        digest = hashlib.sha256(data).hexdigest()
        head, _, tail = path.rpartition("/")
        places = [path]
        if self.state["consistent_snapshot"]:
            # The specification's name (hash before the last component) and tough's
            # (hash before the whole path).
            places = [f"{head}/{digest}.{tail}" if head else f"{digest}.{tail}", f"{digest}.{path}"]
        for place in places:
            full = os.path.join(self.targets_dir, place)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as f:
                f.write(data)
        return data

    # Operations.
    def init(self, opts):
        self.state["consistent_snapshot"] = opts.get("consistent_snapshot", True)
        root = Root(expires=expiry(365), consistent_snapshot=self.state["consistent_snapshot"])
        for role in TOP:
            root.add_key(self.key(f"{role}-1"), role)
        self.md["root"] = Metadata(root)
        self.md["targets"] = Metadata(Targets(expires=expiry(90)))
        self.md["snapshot"] = Metadata(Snapshot(expires=expiry(30)))
        self.md["timestamp"] = Metadata(Timestamp(expires=expiry(7)))
        self.sign("root")
        self.write("1.root.json", self.md["root"])
        self.write("root.json", self.md["root"])
        self.state["prev_root_keys"] = self.role_key_names("root")
        self.mark("targets")
        self.state["pinned"] = ["targets", "snapshot", "timestamp"]
        self.commit()

    def mark(self, role):
        if role not in self.state["dirty"]:
            self.state["dirty"].append(role)

    def bump_root(self, opts):
        root = self.md["root"]
        root.signed.version += 1
        names = opts.get("sign_with") or sorted(
            set(self.state["prev_root_keys"]) | set(self.role_key_names("root"))
        )
        self.sign("root", names)
        self.write(f"{root.signed.version}.root.json", root)
        self.write("root.json", root)
        self.state["prev_root_keys"] = self.role_key_names("root")

    def commit(self):
        dirty = self.state["dirty"]
        pinned = self.state["pinned"]
        targets_roles = [r for r in dirty if r not in ("snapshot", "timestamp", "root")]
        for role in targets_roles:
            if role not in pinned:
                self.md[role].signed.version += 1
            self.sign(role)
            self.write(self.meta_name(role), self.md[role])
        if targets_roles or "snapshot" in dirty:
            snap = self.md["snapshot"]
            for role, md in self.md.items():
                if role not in ("root", "snapshot", "timestamp"):
                    snap.signed.meta[f"{role}.json"] = self.meta_file(role)
            if "snapshot" not in pinned:
                snap.signed.version += 1
            self.sign("snapshot")
            self.write(self.meta_name("snapshot"), snap)
            self.mark("timestamp")
        if "timestamp" in self.state["dirty"]:
            ts = self.md["timestamp"]
            ts.signed.snapshot_meta = self.meta_file("snapshot")
            if "timestamp" not in pinned:
                ts.signed.version += 1
            self.sign("timestamp")
            self.write("timestamp.json", ts)
        self.state["dirty"] = []
        self.state["pinned"] = []

    def apply(self, op):
        name, args = op[0], op[1:]
        if name == "init":
            self.init(args[0] if args else {})
        elif name == "add_key":
            self.md["root"].signed.add_key(self.key(args[1]), args[0])
        elif name == "remove_key":
            self.md["root"].signed.revoke_key(signer(args[1]).public_key.keyid, args[0])
        elif name == "threshold":
            self.md["root"].signed.roles[args[0]].threshold = args[1]
        elif name == "bump_root":
            self.bump_root(args[0] if args else {})
        elif name == "expires":
            self.md[args[0]].signed.expires = expiry(args[1])
            if args[0] != "root":
                self.mark(args[0])
        elif name == "version":
            self.md[args[0]].signed.version = args[1]
            self.mark(args[0])
            self.state["pinned"].append(args[0])
        elif name == "add_target":
            role, path, content = args
            data = self.store_target(path, content)
            self.md[role].signed.targets[path] = TargetFile.from_data(path, data, ["sha256"])
            self.mark(role)
        elif name == "corrupt_target":
            self.store_target_bytes(args[0], args[1])
        elif name == "delegate":
            parent, child, opts = args
            pmd = self.md[parent].signed
            if pmd.delegations is None:
                pmd.delegations = Delegations(keys={}, roles={})
            keys = [self.key(k) for k in opts.get("keys", [f"{child}-1"])]
            for key in keys:
                pmd.delegations.keys[key.keyid] = key
            role = DelegatedRole(
                name=child,
                keyids=[k.keyid for k in keys],
                threshold=opts.get("threshold", 1),
                terminating=opts.get("terminating", False),
                paths=opts.get("paths"),
                path_hash_prefixes=opts.get("path_hash_prefixes"),
            )
            pmd.delegations.roles[child] = role
            self.md[child] = Metadata(Targets(expires=expiry(90)))
            self.mark(parent)
            self.mark(child)
            self.state["pinned"].append(child)
        elif name == "commit":
            self.commit()
        elif name == "sign_with":
            self.state["sign_with"][args[0]] = args[1]
        else:
            raise SystemExit(f"unknown operation {name}")

    def store_target_bytes(self, path, content):
        """Overwrite every stored copy of PATH, under whatever hash prefix it was stored."""
        head, _, tail = path.rpartition("/")
        for dirpath, _, files in os.walk(self.targets_dir):
            for f in files:
                full = os.path.join(dirpath, f)
                rel = os.path.relpath(full, self.targets_dir)
                prefix, _, rest = rel.partition(".")
                hashed = len(prefix) == 64 and all(c in "0123456789abcdef" for c in prefix)
                spec_dir, _, spec_file = rel.rpartition("/")
                spec_hash, _, spec_tail = spec_file.partition(".")
                spec_hashed = len(spec_hash) == 64 and spec_dir == head and spec_tail == tail
                if rel == path or (hashed and rest == path) or spec_hashed:
                    with open(full, "wb") as out:
                        out.write(content.encode())


def main():
    base, ops = sys.argv[1], json.loads(sys.argv[2])
    sim = Sim(base)
    if os.path.exists(os.path.join(base, "sim", "state.json")):
        sim.load()
    for op in ops:
        sim.apply(op)
    sim.save()


if __name__ == "__main__":
    main()
