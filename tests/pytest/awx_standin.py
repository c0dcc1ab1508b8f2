# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An in-memory stand-in for the AWX / Automation Controller REST API (v2), for playbooks/awx_configure.yml.

It speaks the part of the API that the awx.awx modules the playbook uses (organization,
execution_environment, project, credential_type, credential, inventory, inventory_source, job_template,
workflow_job_template, workflow_job_template_node) call, the way those modules call it:

* ``/api/``, ``/api/v2/``, ``/api/v2/ping/``, ``/api/v2/config/``, ``/api/v2/me/`` and the
  ``X-API-Product-Name`` / ``X-API-Product-Version`` headers the modules read;
* one generic store per resource type: list views with ``count``/``next``/``results``, field filters
  (``?name=...``, ``?organization=<id>``, ``or__id``/``or__name``), ``POST`` create (201), ``GET`` /
  ``PATCH`` / ``DELETE`` by id, each object with ``id``, ``type``, ``url``, ``related`` and
  ``summary_fields``;
* related endpoints: ``survey_spec`` (GET, POST, DELETE), association lists (``credentials``,
  ``success_nodes``, ``failure_nodes``, ``always_nodes``: POST ``{"id": n}`` / ``{"id": n,
  "disassociate": true}``, 204), ``create_approval_template`` on a workflow node, the project update a
  project creation starts, ``unified_job_templates`` over every template-like store;
* token auth (``Authorization: Bearer``) and basic auth (also ``POST /api/v2/tokens/`` for a session
  token and its ``DELETE``); anything else is 401;
* secrets answered as AWX answers them: a credential's inputs that its credential type marks ``secret``
  read back as ``$encrypted$`` (and ``$encrypted$`` sent back keeps the stored value), survey password
  defaults likewise;
* the checks that catch a wrong request: references to objects that do not exist, credential inputs the
  type does not define or required ones missing, duplicate names, filters on unknown fields (400);
  unknown endpoints are 404, so gaps show.

Every request is recorded (method, path, query, JSON body, whether it was authenticated) in ``requests``.
It does not model AWX's full validation, RBAC, job launches or the execution of project/inventory updates
(a project update is created already successful).
"""

from __future__ import annotations

import base64
import copy
import datetime
import itertools
import json
import os
import ssl
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

ENCRYPTED = "$encrypted$"
VERSION = "24.6.1"
PAGE_SIZE = 25

# Fields every object of a type carries (what AWX shows for a fresh object), besides id/type/url/...
DEFAULTS = {
    "organizations": {"description": "", "max_hosts": 0, "custom_virtualenv": None, "default_environment": None},
    "execution_environments": {"description": "", "organization": None, "image": "", "managed": False,
                               "credential": None, "pull": ""},
    "projects": {"description": "", "local_path": "", "scm_type": "", "scm_url": "", "scm_branch": "",
                 "scm_refspec": "", "scm_clean": False, "scm_track_submodules": False,
                 "scm_delete_on_update": False, "credential": None, "timeout": 0, "scm_revision": "",
                 "organization": None, "scm_update_on_launch": False, "scm_update_cache_timeout": 0,
                 "allow_override": False, "custom_virtualenv": None, "default_environment": None,
                 "signature_validation_credential": None, "status": "successful"},
    "credential_types": {"description": "", "kind": "cloud", "namespace": None, "managed": False,
                         "inputs": {}, "injectors": {}},
    "credentials": {"description": "", "organization": None, "credential_type": None, "managed": False,
                    "inputs": {}, "kind": ""},
    "inventories": {"description": "", "organization": None, "kind": "", "host_filter": None, "variables": "",
                    "prevent_instance_group_fallback": False},
    "inventory_sources": {"description": "", "source": "", "source_path": "", "source_vars": "",
                          "scm_branch": "", "credential": None, "enabled_var": "", "enabled_value": "",
                          "host_filter": "", "overwrite": False, "overwrite_vars": False, "custom_virtualenv": None,
                          "timeout": 0, "verbosity": 1, "limit": "", "execution_environment": None,
                          "inventory": None, "update_on_launch": False, "update_cache_timeout": 0,
                          "source_project": None},
    "job_templates": {"description": "", "job_type": "run", "inventory": None, "project": None, "playbook": "",
                      "scm_branch": "", "forks": 0, "limit": "", "verbosity": 0, "extra_vars": "", "job_tags": "",
                      "force_handlers": False, "skip_tags": "", "start_at_task": "", "timeout": 0,
                      "use_fact_cache": False, "organization": None, "execution_environment": None,
                      "host_config_key": "", "ask_scm_branch_on_launch": False, "ask_diff_mode_on_launch": False,
                      "ask_variables_on_launch": False, "ask_limit_on_launch": False, "ask_tags_on_launch": False,
                      "ask_skip_tags_on_launch": False, "ask_job_type_on_launch": False,
                      "ask_verbosity_on_launch": False, "ask_inventory_on_launch": False,
                      "ask_credential_on_launch": False, "ask_execution_environment_on_launch": False,
                      "ask_labels_on_launch": False, "ask_forks_on_launch": False,
                      "ask_job_slice_count_on_launch": False, "ask_timeout_on_launch": False,
                      "ask_instance_groups_on_launch": False, "survey_enabled": False, "become_enabled": False,
                      "diff_mode": False, "allow_simultaneous": False, "custom_virtualenv": None,
                      "job_slice_count": 1, "webhook_service": "", "webhook_credential": None,
                      "prevent_instance_group_fallback": False},
    "workflow_job_templates": {"description": "", "extra_vars": "", "organization": None, "survey_enabled": False,
                               "allow_simultaneous": False, "ask_variables_on_launch": False, "inventory": None,
                               "limit": None, "scm_branch": None, "ask_inventory_on_launch": False,
                               "ask_scm_branch_on_launch": False, "ask_limit_on_launch": False,
                               "webhook_service": "", "webhook_credential": None, "ask_labels_on_launch": False,
                               "ask_skip_tags_on_launch": False, "ask_tags_on_launch": False,
                               "skip_tags": None, "job_tags": None},
    "workflow_job_template_nodes": {"extra_data": {}, "inventory": None, "scm_branch": None, "job_type": None,
                                    "job_tags": None, "skip_tags": None, "limit": None, "diff_mode": None,
                                    "verbosity": None, "execution_environment": None, "forks": None,
                                    "job_slice_count": None, "timeout": None, "workflow_job_template": None,
                                    "unified_job_template": None, "all_parents_must_converge": False,
                                    "identifier": ""},
    "workflow_approval_templates": {"description": "", "timeout": 0, "execution_environment": None},
    "project_updates": {},
}

# Writable fields for the types whose API ignores anything else (others keep what they are sent).
WRITABLE = {
    "workflow_approval_templates": {"name", "description", "timeout"},
}

# Foreign keys: field -> store it points into.
REFERENCES = {
    "organization": "organizations", "default_environment": "execution_environments",
    "execution_environment": "execution_environments", "credential": "credentials",
    "signature_validation_credential": "credentials", "webhook_credential": "credentials",
    "credential_type": "credential_types", "inventory": "inventories", "project": "projects",
    "source_project": "projects", "workflow_job_template": "workflow_job_templates",
}

# Objects are unique by these fields within their store.
UNIQUE = {
    "organizations": ("name",), "execution_environments": ("name",), "projects": ("name", "organization"),
    "credential_types": ("name", "kind"), "credentials": ("name", "organization", "credential_type"),
    "inventories": ("name", "organization"), "inventory_sources": ("name", "inventory"),
    "job_templates": ("name", "organization"), "workflow_job_templates": ("name", "organization"),
    "workflow_job_template_nodes": ("identifier", "workflow_job_template"),
}

# Association lists per store (related/<name>/): the store the ids point into.
ASSOCIATIONS = {
    "job_templates": {"credentials": "credentials"},
    "workflow_job_template_nodes": {"credentials": "credentials", "success_nodes": "workflow_job_template_nodes",
                                    "failure_nodes": "workflow_job_template_nodes",
                                    "always_nodes": "workflow_job_template_nodes"},
}

UNIFIED = {"projects": "project", "inventory_sources": "inventory_source", "job_templates": "job_template",
           "workflow_job_templates": "workflow_job_template",
           "workflow_approval_templates": "workflow_approval_template"}

SINGULAR = {"organizations": "organization", "execution_environments": "execution_environment",
            "projects": "project", "credential_types": "credential_type", "credentials": "credential",
            "inventories": "inventory", "inventory_sources": "inventory_source", "job_templates": "job_template",
            "workflow_job_templates": "workflow_job_template",
            "workflow_job_template_nodes": "workflow_job_template_node",
            "workflow_approval_templates": "workflow_approval_template", "project_updates": "project_update"}

# AWX's managed credential types the playbook refers to by name (inputs as AWX defines them).
MANAGED_CREDENTIAL_TYPES = [
    {"name": "Microsoft Azure Resource Manager", "kind": "cloud", "namespace": "azure_rm",
     "inputs": {"fields": [{"id": "subscription", "type": "string", "label": "Subscription ID"},
                           {"id": "username", "type": "string", "label": "Username"},
                           {"id": "password", "type": "string", "label": "Password", "secret": True},
                           {"id": "client", "type": "string", "label": "Client ID"},
                           {"id": "secret", "type": "string", "label": "Client Secret", "secret": True},
                           {"id": "tenant", "type": "string", "label": "Tenant ID"},
                           {"id": "cloud_environment", "type": "string", "label": "Azure Cloud Environment"}],
                "required": ["subscription"]}},
    {"name": "Vault", "kind": "vault", "namespace": "vault",
     "inputs": {"fields": [{"id": "vault_password", "type": "string", "label": "Vault Password", "secret": True,
                            "ask_at_runtime": True},
                           {"id": "vault_id", "type": "string", "label": "Vault Identifier"}],
                "required": ["vault_password"]}},
    {"name": "Source Control", "kind": "scm", "namespace": "scm",
     "inputs": {"fields": [{"id": "username", "type": "string", "label": "Username"},
                           {"id": "password", "type": "string", "label": "Password", "secret": True},
                           {"id": "ssh_key_data", "type": "string", "label": "SCM Private Key", "secret": True,
                            "multiline": True},
                           {"id": "ssh_key_unlock", "type": "string", "label": "Private Key Passphrase",
                            "secret": True}]}},
]

COMMON_FILTERS = {"id", "name", "type", "page", "page_size", "order_by"}


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(status, body)
        self.status = status
        self.body = body


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    body: object
    status: int = 0
    authenticated: bool = False
    raw: str = ""


@dataclass
class Store:
    objects: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)      # (id, association) -> [ids]
    surveys: dict = field(default_factory=dict)    # id -> spec


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class AwxStandin:
    """The API's state and its request handling; ``start()`` serves it on 127.0.0.1 (HTTPS with ``tls``)."""

    def __init__(self, token=None, username="admin", password=None, tls=True):
        self.token = token
        self.username = username
        self.password = password
        self.tls = tls
        self.requests = []
        self.stores = {name: Store() for name in DEFAULTS}
        self.session_tokens = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server = None
        self._thread = None
        self._certdir = None
        for ctype in MANAGED_CREDENTIAL_TYPES:
            self._create("credential_types", dict(copy.deepcopy(ctype), managed=True), validate=False)

    # ---- serving ----------------------------------------------------------------------------------
    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return "%s://%s:%d" % ("https" if self.tls else "http", host, port)

    def start(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                status, body = standin.handle(self.command, self.path, raw, self.headers.get("Authorization"))
                payload = b"" if body is None else json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-API-Product-Name", "AWX")
                self.send_header("X-API-Product-Version", VERSION)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            self._certdir = tempfile.mkdtemp(prefix="awx-standin-")
            cert, key = _self_signed(self._certdir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="awx-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=30)
            self._server = None
        if self._certdir:
            for name in os.listdir(self._certdir):
                os.unlink(os.path.join(self._certdir, name))
            os.rmdir(self._certdir)
            self._certdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- queries for tests ------------------------------------------------------------------------
    def all(self, store):
        """Objects of a store as the API shows them (secrets hidden)."""
        with self._lock:
            return [self._render(store, obj) for obj in self.stores[store].objects.values()]

    def find(self, store, **fields):
        return [o for o in self.all(store) if all(o.get(k) == v for k, v in fields.items())]

    def stored(self, store, obj_id):
        """An object as stored, secrets included (for assertions that a value arrived)."""
        with self._lock:
            return copy.deepcopy(self.stores[store].objects[obj_id])

    def survey(self, store, obj_id):
        with self._lock:
            return self._survey_out(store, obj_id)

    def linked(self, store, obj_id, association):
        with self._lock:
            return list(self.stores[store].links.get((obj_id, association), []))

    def writes(self):
        return [r for r in self.requests if r.method in ("POST", "PATCH", "PUT", "DELETE")]

    # ---- request handling -------------------------------------------------------------------------
    def handle(self, method, target, raw, authorization):
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        record = Recorded(method, parts.path, query, body, raw=raw)
        with self._lock:
            self.requests.append(record)
            try:
                record.authenticated = self._authenticate(authorization, parts.path, method)
                status, out = self._route(method, parts.path, query, body, record)
            except ApiError as err:
                status, out = err.status, err.body
            record.status = status
        return status, out

    def _authenticate(self, authorization, path, method):
        if path in ("/api/", "/api/v2/", "/api/v2/ping/"):
            return False
        authorization = authorization or ""
        if authorization.startswith("Bearer "):
            token = authorization[len("Bearer "):]
            if (self.token and token == self.token) or token in self.session_tokens:
                return True
        elif authorization.startswith("Basic ") and self.password:
            try:
                user, _sep, secret = base64.b64decode(authorization[6:]).decode("utf-8").partition(":")
            except ValueError:
                user, secret = "", ""
            if user == self.username and secret == self.password:
                return True
        raise ApiError(401, {"detail": "Authentication credentials were not provided."})

    def _route(self, method, path, query, body, record):
        if not path.startswith("/api/"):
            raise ApiError(404, {"detail": "Not found."})
        segments = [s for s in path[len("/api/"):].split("/") if s]
        if not segments:
            return self._only(method, "GET", {"description": "AWX REST API", "current_version": "/api/v2/",
                                              "available_versions": {"v2": "/api/v2/"}})
        if segments[0] != "v2":
            raise ApiError(404, {"detail": "Not found."})
        segments = segments[1:]
        if not segments:
            return self._only(method, "GET", {name: "/api/v2/%s/" % name for name in self.stores})
        head = segments[0]
        if head == "ping" and len(segments) == 1:
            return self._only(method, "GET", {"ha": False, "version": VERSION, "active_node": "awx-standin",
                                              "install_uuid": "00000000-0000-0000-0000-000000000000"})
        if head == "config" and len(segments) == 1:
            return self._only(method, "GET", {"version": VERSION, "time_zone": "UTC", "license_info": {},
                                              "project_base_dir": "/var/lib/awx/projects"})
        if head == "me" and len(segments) == 1:
            user = {"id": 1, "type": "user", "url": "/api/v2/users/1/", "username": self.username,
                    "is_superuser": True, "related": {}, "summary_fields": {}}
            return self._only(method, "GET", {"count": 1, "next": None, "previous": None, "results": [user]})
        if head == "tokens":
            return self._tokens(method, segments)
        if head == "unified_job_templates" and len(segments) == 1:
            self._only(method, "GET", None)
            return 200, self._list(self._unified(), query, path)
        if head not in self.stores:
            raise ApiError(404, {"detail": "Not found."})
        store = head
        if len(segments) == 1:
            if method == "GET":
                return 200, self._list([self._render(store, o) for o in self.stores[store].objects.values()],
                                       query, path, store)
            if method == "POST":
                if store in ("project_updates", "workflow_approval_templates"):
                    raise ApiError(405, {"detail": 'Method "POST" not allowed.'})
                return 201, self._render(store, self._create(store, self._body(body)))
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})
        try:
            obj_id = int(segments[1])
        except ValueError:
            raise ApiError(404, {"detail": "Not found."}) from None
        obj = self.stores[store].objects.get(obj_id)
        if obj is None:
            raise ApiError(404, {"detail": "Not found."})
        if len(segments) == 2:
            if method == "GET":
                return 200, self._render(store, obj)
            if method == "PATCH" and store != "project_updates":
                return 200, self._render(store, self._update(store, obj, self._body(body)))
            if method == "DELETE" and store != "project_updates":
                self._delete(store, obj_id)
                return 204, None
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})
        if len(segments) == 3:
            sub = segments[2]
            if sub == "survey_spec" and store in ("job_templates", "workflow_job_templates"):
                return self._survey(store, obj_id, method, body)
            if sub in ASSOCIATIONS.get(store, {}):
                return self._association(store, obj_id, sub, method, body, query, path)
            if sub == "create_approval_template" and store == "workflow_job_template_nodes":
                self._only(method, "POST", None)
                return 201, self._render("workflow_approval_templates", self._create_approval(obj, self._body(body)))
        raise ApiError(404, {"detail": "Not found."})

    @staticmethod
    def _only(method, allowed, answer):
        if method != allowed:
            raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})
        return 200, answer

    @staticmethod
    def _body(body):
        if not isinstance(body, dict):
            raise ApiError(400, {"detail": "JSON parse error: expected an object."})
        return body

    def _tokens(self, method, segments):
        if len(segments) == 1 and method == "POST":
            token_id = next(self._ids)
            value = "session%s" % uuid.uuid4().hex
            self.session_tokens[value] = token_id
            return 201, {"id": token_id, "type": "o_auth2_access_token", "url": "/api/v2/tokens/%d/" % token_id,
                         "token": value, "scope": "write"}
        if len(segments) == 2 and method == "DELETE":
            for value, token_id in list(self.session_tokens.items()):
                if str(token_id) == segments[1]:
                    del self.session_tokens[value]
                    return 204, None
        raise ApiError(404, {"detail": "Not found."})

    # ---- lists ------------------------------------------------------------------------------------
    def _list(self, objects, query, path, store=None):
        filters = {k: v for k, v in query.items() if k not in ("page", "page_size", "order_by")}
        allowed = set(COMMON_FILTERS) | set(DEFAULTS.get(store, {})) if store else COMMON_FILTERS | {"organization"}
        ors = {}
        for key in list(filters):
            name = key[len("or__"):] if key.startswith("or__") else key
            if name not in allowed:
                raise ApiError(400, {"detail": "Filtering on %s is not allowed." % name})
            if key.startswith("or__"):
                ors[name] = filters.pop(key)

        def matches(obj):
            if any(_as_query(obj.get(k)) != v for k, v in filters.items()):
                return False
            return not ors or any(_as_query(obj.get(k)) == v for k, v in ors.items())

        found = sorted((o for o in objects if matches(o)), key=lambda o: o["id"])
        size = int(query.get("page_size") or PAGE_SIZE)
        page = int(query.get("page") or 1)
        chunk = found[(page - 1) * size:page * size]
        nxt = None
        if page * size < len(found):
            nxt = "%s?%s" % (path, urlencode(dict(query, page=page + 1)))
        return {"count": len(found), "next": nxt, "previous": None, "results": chunk}

    def _unified(self):
        out = []
        for store, kind in UNIFIED.items():
            for obj in self.stores[store].objects.values():
                rendered = self._render(store, obj)
                out.append({"id": obj["id"], "type": kind, "name": obj["name"], "url": rendered["url"],
                            "organization": obj.get("organization"), "related": rendered["related"],
                            "summary_fields": rendered["summary_fields"]})
        return out

    # ---- create / update / delete -----------------------------------------------------------------
    def _create(self, store, data, validate=True):
        if store in WRITABLE:
            data = {k: v for k, v in data.items() if k in WRITABLE[store]}
        obj = copy.deepcopy(DEFAULTS[store])
        obj.update(copy.deepcopy(data))
        self._normalise(store, obj)
        if validate:
            self._validate(store, obj, None)
        if store == "workflow_job_template_nodes" and not obj.get("identifier"):
            obj["identifier"] = str(uuid.uuid4())
        obj["id"] = next(self._ids)
        obj["created"] = obj["modified"] = _now()
        if store == "credentials":
            obj["kind"] = self.stores["credential_types"].objects[obj["credential_type"]].get("namespace") or ""
        self.stores[store].objects[obj["id"]] = obj
        if store == "projects" and obj.get("scm_type"):
            update = self._create("project_updates", {"name": obj["name"], "project": obj["id"], "status": "successful",
                                                      "failed": False, "finished": _now(), "scm_revision": "0" * 40},
                                  validate=False)
            obj["current_update"] = update["id"]
        return obj

    def _update(self, store, obj, data):
        if store in WRITABLE:
            data = {k: v for k, v in data.items() if k in WRITABLE[store]}
        new = copy.deepcopy(obj)
        for key, value in data.items():
            if key in ("id", "type", "url", "related", "summary_fields", "created", "modified"):
                continue
            if key == "inputs" and isinstance(value, dict):
                value = {k: (obj.get("inputs", {}).get(k) if v == ENCRYPTED else v) for k, v in value.items()}
            new[key] = copy.deepcopy(value)
        self._normalise(store, new)
        self._validate(store, new, obj["id"])
        new["modified"] = _now()
        obj.clear()
        obj.update(new)
        return obj

    def _delete(self, store, obj_id):
        self.stores[store].objects.pop(obj_id)
        self.stores[store].surveys.pop(obj_id, None)
        for key in [k for k in self.stores[store].links if k[0] == obj_id]:
            del self.stores[store].links[key]
        if store == "workflow_job_template_nodes":
            for ids in self.stores[store].links.values():
                if obj_id in ids:
                    ids.remove(obj_id)

    @staticmethod
    def _normalise(store, obj):
        # AWX stores an empty string where a client sends null for these non-nullable text fields.
        if store == "inventories" and obj.get("kind") is None:
            obj["kind"] = ""

    def _validate(self, store, obj, own_id):
        errors = {}
        if store != "workflow_job_template_nodes" and not obj.get("name"):
            errors["name"] = ["This field is required."]
        for key, target in REFERENCES.items():
            if key in obj and obj[key] is not None and not (store == "project_updates" and key == "project"):
                if not isinstance(obj[key], int) or obj[key] not in self.stores[target].objects:
                    errors[key] = ['Invalid pk "%s" - object does not exist.' % obj[key]]
        if store == "credentials" and "credential_type" not in errors:
            if obj.get("credential_type") is None:
                errors["credential_type"] = ["This field is required."]
            else:
                ctype = self.stores["credential_types"].objects[obj["credential_type"]]
                fields = {f["id"] for f in ctype.get("inputs", {}).get("fields", [])}
                unknown = sorted(set(obj.get("inputs") or {}) - fields)
                missing = [r for r in ctype.get("inputs", {}).get("required", []) if not (obj.get("inputs") or {}).get(r)]
                if unknown:
                    errors["inputs"] = ["Additional properties are not allowed (%s)" % ", ".join(unknown)]
                elif missing:
                    errors["inputs"] = {name: ["required for %s" % ctype["name"]] for name in missing}
        if store == "credential_types" and own_id is None:
            if obj.get("kind") not in ("cloud", "net"):
                errors["kind"] = ["Must be 'cloud' or 'net', not %s" % obj.get("kind")]
            for f in (obj.get("inputs") or {}).get("fields", []):
                if "id" not in f or "label" not in f:
                    errors["inputs"] = ["each field needs an id and a label"]
        if store == "inventory_sources":
            if obj.get("inventory") is None:
                errors["inventory"] = ["This field is required."]
            if obj.get("source") == "scm" and obj.get("source_project") is None:
                errors["source_project"] = ["Project required for scm type sources."]
        if store == "job_templates":
            if obj.get("project") is None or not obj.get("playbook"):
                errors["playbook"] = ["Job templates need a project and a playbook."]
            if obj.get("inventory") is None and not obj.get("ask_inventory_on_launch"):
                errors["inventory"] = ["Job Template must provide 'inventory' or allow prompting for it."]
        if store == "workflow_job_template_nodes" and obj.get("workflow_job_template") is None:
            errors["workflow_job_template"] = ["This field is required."]
        if store == "workflow_job_template_nodes" and obj.get("unified_job_template") is not None:
            if not any(obj["unified_job_template"] in self.stores[s].objects for s in UNIFIED):
                errors["unified_job_template"] = ['Invalid pk "%s".' % obj["unified_job_template"]]
        if errors:
            raise ApiError(400, errors)
        keys = UNIQUE.get(store)
        if keys:
            for other in self.stores[store].objects.values():
                if other["id"] != own_id and all(other.get(k) == obj.get(k) for k in keys):
                    raise ApiError(400, {"__all__": ["%s with this %s already exists."
                                                     % (SINGULAR[store], " and ".join(keys))]})

    # ---- related endpoints ------------------------------------------------------------------------
    def _survey(self, store, obj_id, method, body):
        if method == "GET":
            return 200, self._survey_out(store, obj_id)
        if method == "POST":
            spec = self._body(body)
            if not isinstance(spec.get("spec"), list) or "name" not in spec or "description" not in spec:
                raise ApiError(400, {"error": "survey_spec needs name, description and a spec list"})
            old = self.stores[store].surveys.get(obj_id, {})
            old_defaults = {q.get("variable"): q.get("default") for q in old.get("spec", [])}
            for question in spec["spec"]:
                for key in ("question_name", "variable", "type", "required"):
                    if key not in question:
                        raise ApiError(400, {"error": "'%s' missing from survey question" % key})
                if question["type"] == "password" and question.get("default") == ENCRYPTED:
                    question["default"] = old_defaults.get(question["variable"], "")
            self.stores[store].surveys[obj_id] = copy.deepcopy(spec)
            return 200, None
        if method == "DELETE":
            self.stores[store].surveys.pop(obj_id, None)
            return 200, None
        raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})

    def _survey_out(self, store, obj_id):
        spec = copy.deepcopy(self.stores[store].surveys.get(obj_id, {}))
        for question in spec.get("spec", []):
            if question.get("type") == "password" and question.get("default"):
                question["default"] = ENCRYPTED
        return spec

    def _association(self, store, obj_id, sub, method, body, query, path):
        target = ASSOCIATIONS[store][sub]
        links = self.stores[store].links.setdefault((obj_id, sub), [])
        if method == "GET":
            objects = [self._render(target, self.stores[target].objects[i]) for i in links]
            return 200, self._list(objects, query, path, target)
        if method == "POST":
            data = self._body(body)
            other = data.get("id")
            if not isinstance(other, int) or other not in self.stores[target].objects:
                raise ApiError(400, {"msg": "Object with id %s not found." % other})
            if data.get("disassociate"):
                if other in links:
                    links.remove(other)
            elif other not in links:
                if target == "workflow_job_template_nodes":
                    this = self.stores[store].objects[obj_id]
                    if self.stores[target].objects[other]["workflow_job_template"] != this["workflow_job_template"]:
                        raise ApiError(400, {"Error": "Cannot associate nodes of different workflows."})
                    if other == obj_id:
                        raise ApiError(400, {"Error": "Cycle detected."})
                links.append(other)
            return 204, None
        raise ApiError(405, {"detail": 'Method "%s" not allowed.' % method})

    def _create_approval(self, node, data):
        old = node.get("unified_job_template")
        if old in self.stores["workflow_approval_templates"].objects:
            self.stores["workflow_approval_templates"].objects.pop(old)
        approval = self._create("workflow_approval_templates", data)
        node["unified_job_template"] = approval["id"]
        return approval

    # ---- rendering --------------------------------------------------------------------------------
    def _render(self, store, obj):
        out = copy.deepcopy(obj)
        kind = SINGULAR[store]
        base = "/api/v2/%s/%d/" % (store, obj["id"])
        out.update(type=kind, url=base)
        related = {}
        summary = {}
        for key, target in REFERENCES.items():
            if obj.get(key) is not None and key in DEFAULTS[store] and obj[key] in self.stores[target].objects:
                ref = self.stores[target].objects[obj[key]]
                related[key] = "/api/v2/%s/%d/" % (target, ref["id"])
                summary[key] = {"id": ref["id"], "name": ref.get("name", "")}
        for sub in ASSOCIATIONS.get(store, {}):
            related[sub] = base + sub + "/"
        if store in ("job_templates", "workflow_job_templates"):
            related["survey_spec"] = base + "survey_spec/"
        if store == "job_templates":
            summary["credentials"] = [{"id": i, "name": self.stores["credentials"].objects[i]["name"]}
                                      for i in self.stores[store].links.get((obj["id"], "credentials"), [])]
        if store == "workflow_job_templates":
            related["workflow_nodes"] = base + "workflow_nodes/"
        if store == "projects":
            related["update"] = base + "update/"
            if obj.get("current_update"):
                summary["current_update"] = {"id": obj["current_update"], "status": "successful"}
            out.pop("current_update", None)
        if store == "project_updates":
            out.update(status=obj.get("status", "successful"), failed=obj.get("failed", False))
        if store == "workflow_job_template_nodes":
            related["create_approval_template"] = base + "create_approval_template/"
            ujt = obj.get("unified_job_template")
            for ustore, ukind in UNIFIED.items():
                if ujt in self.stores[ustore].objects:
                    related["unified_job_template"] = "/api/v2/%s/%d/" % (ustore, ujt)
                    summary["unified_job_template"] = {"id": ujt, "name": self.stores[ustore].objects[ujt]["name"],
                                                       "unified_job_type": ukind}
        if store == "credentials":
            ctype = self.stores["credential_types"].objects.get(obj.get("credential_type"))
            secret = {f["id"] for f in (ctype or {}).get("inputs", {}).get("fields", []) if f.get("secret")}
            out["inputs"] = {k: (ENCRYPTED if k in secret and v not in ("", None) else v)
                             for k, v in (obj.get("inputs") or {}).items()}
            if ctype:
                summary["credential_type"] = {"id": ctype["id"], "name": ctype["name"], "kind": ctype["kind"]}
        out["related"] = related
        out["summary_fields"] = summary
        return out


def _as_query(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _self_signed(directory):
    """A throw-away certificate for 127.0.0.1 (the playbook then runs with controller_validate_certs=false)."""
    from node_agent.logs import ensure_certificate  # the testbed's maker of a self-signed loopback certificate

    return ensure_certificate(directory)
