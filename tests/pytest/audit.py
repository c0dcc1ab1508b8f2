# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the testbed's API audit log, and look for secrets on process command lines.

The testbed's kube-apiserver writes one JSON event per request (Metadata level: user, verb, resource,
namespace, name, response code; never a body) to ``<state>/logs/audit.log``. A test marks the end of
the log, runs something, then asks what was requested since:

    mark = AuditLog.for_kubeconfig(kubeconfig).mark()
    ... run a playbook ...
    changes = log.mutations_since(mark, exclude_users=SYSTEM_USERS)
    assert not changes, format_requests(changes)

``ArgvSampler`` samples ``ps -eo args`` while a run goes on and reports any command line that
contains one of the given canary values.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass

MUTATING_VERBS = frozenset(["create", "update", "patch", "delete", "deletecollection"])

# The testbed's own actors, which change the cluster on their own schedule (heartbeats, leases,
# controllers): not the code under test.
SYSTEM_USERS = frozenset([
    "testbed-node-agent",
    "system:apiserver",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "kube-apiserver-kubelet-client",
])
SYSTEM_USER_PREFIXES = ("system:serviceaccount:kube-system:", "system:node:")


def is_system_user(username):
    return username in SYSTEM_USERS or username.startswith(SYSTEM_USER_PREFIXES)


@dataclass(frozen=True)
class Request:
    """One audited request, reduced to what the tests compare."""

    user: str
    verb: str
    resource: str
    namespace: str
    name: str
    code: int
    uri: str

    @classmethod
    def from_event(cls, event):
        ref = event.get("objectRef") or {}
        resource = ref.get("resource") or ""
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        if ref.get("apiGroup"):
            resource += "." + ref["apiGroup"]
        return cls(
            user=(event.get("user") or {}).get("username") or "",
            verb=event.get("verb") or "",
            resource=resource,
            namespace=ref.get("namespace") or "",
            name=ref.get("name") or "",
            code=int((event.get("responseStatus") or {}).get("code") or 0),
            uri=event.get("requestURI") or "",
        )

    @property
    def dry_run(self):
        """A server-side dry run (``?dryRun=All``): validated and admitted, never persisted."""
        return bool(re.search(r"[?&]dryRun=All(&|$)", self.uri))

    @property
    def mutating(self):
        """A request that changes what the cluster stores (a dry run does not)."""
        return self.verb in MUTATING_VERBS and not self.dry_run

    def __str__(self):
        where = "/".join(p for p in (self.namespace, self.name) if p)
        return "%s %s %s%s -> %d" % (self.user, self.verb, self.resource, " " + where if where else "", self.code)


@dataclass(frozen=True)
class Mark:
    """A position in the audit log: the file (by inode) and the byte offset."""

    inode: int
    offset: int


class AuditLog:
    """The audit log of one testbed."""

    def __init__(self, log_path):
        self.path = log_path

    @classmethod
    def for_state(cls, state_dir):
        return cls(os.path.join(state_dir, "logs", "audit.log"))

    @classmethod
    def for_kubeconfig(cls, kubeconfig):
        """The testbed writes its kubeconfig at the top of its state directory."""
        return cls.for_state(os.path.dirname(os.path.abspath(kubeconfig)))

    def exists(self):
        return os.path.exists(self.path)

    def mark(self):
        stat = os.stat(self.path)
        return Mark(stat.st_ino, stat.st_size)

    def _rotated_file(self, inode):
        """The rotated backup that used to be ``audit.log`` (kube-apiserver renames it on rotation)."""
        folder = os.path.dirname(self.path)
        for entry in os.listdir(folder):
            candidate = os.path.join(folder, entry)
            if entry.startswith("audit") and os.path.isfile(candidate) and os.stat(candidate).st_ino == inode:
                return candidate
        return None

    def _read_lines(self, file_path, offset):
        with open(file_path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
        # A line being written right now has no newline yet: it belongs to the next read.
        complete = data[:data.rfind(b"\n") + 1]
        return [line for line in complete.split(b"\n") if line.strip()]

    def events_since(self, mark):
        """Every audit event written after ``mark`` (across one rotation), oldest first."""
        lines = []
        current = os.stat(self.path)
        if current.st_ino == mark.inode:
            lines = self._read_lines(self.path, mark.offset)
        else:
            rotated = self._rotated_file(mark.inode)
            if rotated is not None:
                lines = self._read_lines(rotated, mark.offset)
            lines += self._read_lines(self.path, 0)
        return [json.loads(line) for line in lines]

    def requests_since(self, mark):
        return [Request.from_event(event) for event in self.events_since(mark)]

    def mutations_since(self, mark, exclude_users=None, include_system=False):
        """Mutating requests after ``mark``: by default without the testbed's own actors."""
        exclude = set(exclude_users or ())
        found = []
        for request in self.requests_since(mark):
            if not request.mutating or request.user in exclude:
                continue
            if not include_system and is_system_user(request.user):
                continue
            found.append(request)
        return found

    def secret_values_in_uris(self, mark, values):
        """Audited request URIs (which carry query strings) that contain any of ``values``."""
        hits = []
        for request in self.requests_since(mark):
            if any(value and value in request.uri for value in values):
                hits.append(request)
        return hits


def format_requests(requests):
    return "\n".join("  %s" % r for r in requests) or "  (none)"


class ArgvSampler:
    """Samples every process's full command line (``ps -ww -eo args``) in a thread until stopped.

    ``hits`` collects ``(canary, command line)`` for every sampled command line holding a canary;
    ``samples`` counts how many snapshots were taken, so a test can show that sampling happened.
    """

    def __init__(self, canaries, interval=0.05):
        self.canaries = [c for c in canaries if c]
        self.interval = interval
        self.samples = 0
        self.hits = []
        self._stop = threading.Event()
        self._thread = None

    def sample_once(self):
        # -ww: never cut a command line to the terminal width (80 columns when not on a terminal).
        out = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True, check=False).stdout
        self.samples += 1
        for line in out.splitlines()[1:]:
            for canary in self.canaries:
                if canary in line:
                    self.hits.append((canary, line))
        return out

    def _run(self):
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, name="argv-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample_once()
        return False
