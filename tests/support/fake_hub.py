"""A loopback stand-in for the Hugging Face hub, so tests download for real with no network.

It answers the routes huggingface_hub 2.4 calls (see its hf_api.py `model_info` and
file_download.py `get_hf_file_metadata` / `http_get`):
- `GET /api/models/{repo}[/revision/{rev}]?blobs=true`: the listing, with LFS sha256 and sizes;
- `HEAD /{repo}/resolve/{rev}/{file}`: `X-Repo-Commit`, `ETag` (`X-Linked-Etag` and
  `X-Linked-Size` for LFS files) and `Content-Length`;
- `GET` on the same, honouring `Range`, so an interrupted download resumes.
Errors carry the hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound).
Faults on demand: `cut_after[file] = n` drops the connection after n bytes, once; `corrupt`
serves a file with one byte changed, while the listing keeps its true sha256; `hold(file, n)`
sends n bytes of the file and then waits until `release(file)`, so a test can look at a
download half-way.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".onnx", ".msgpack", ".h5")


@dataclass
class FakeHub:
    """Repositories by id, each with its revisions (name -> commit) and files per commit."""

    commits: dict[str, dict[str, dict[str, bytes]]] = field(default_factory=dict)
    refs: dict[str, dict[str, str]] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Range
    held: dict[str, tuple[int, threading.Event]] = field(default_factory=dict)
    url: str = ""

    def add(self, repo_id: str, files: dict[str, bytes], revision: str = "main") -> str:
        """Publish files as a revision of a repository; returns the commit's hash."""
        digest = hashlib.sha1(repo_id.encode() + revision.encode())
        for name in sorted(files):
            digest.update(name.encode() + hashlib.sha256(files[name]).digest())
        commit = digest.hexdigest()
        self.commits.setdefault(repo_id, {})[commit] = files
        self.refs.setdefault(repo_id, {})[revision] = commit
        return commit

    def hold(self, name: str, after: int) -> None:
        """The next download of `name` stops after `after` bytes until release(name)."""
        self.held[name] = (after, threading.Event())

    def release(self, name: str) -> None:
        held = self.held.pop(name, None)
        if held is not None:
            held[1].set()

    def start(self) -> str:
        hub = self

        class Handler(HubHandler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def files_of(self, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]] | None:
        commits = self.commits.get(repo_id, {})
        commit = self.refs.get(repo_id, {}).get(revision, revision)
        return (commit, commits[commit]) if commit in commits else None


def lfs(name: str) -> bool:
    return name.endswith(LFS_SUFFIXES)


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubHandler(BaseHTTPRequestHandler):
    hub: FakeHub
    LISTING = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
    RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _serve(self, body: bool) -> None:
        path = urlsplit(self.path).path
        self.hub.requests.append((self.command, path, self.headers.get("Range", "")))
        if match := self.LISTING.match(path):
            return self._listing(match["repo"], unquote(match["rev"] or "main"))
        if match := self.RESOLVE.match(path):
            return self._file(match["repo"], unquote(match["rev"]), unquote(match["file"]), body)
        self._error(404, "RepoNotFound", "no such route")

    def _lookup(self, repo: str, revision: str) -> tuple[str, dict[str, bytes]] | None:
        if repo not in self.hub.commits:
            self._error(404, "RepoNotFound", f"Repository Not Found: {repo}")
            return None
        found = self.hub.files_of(repo, revision)
        if found is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return found

    def _listing(self, repo: str, revision: str) -> None:
        found = self._lookup(repo, revision)
        if found is None:
            return
        commit, files = found
        siblings = []
        for name, data in sorted(files.items()):
            sibling = {"rfilename": name, "size": len(data), "blobId": git_blob_id(data)}
            if lfs(name):
                sha256 = hashlib.sha256(data).hexdigest()
                sibling["lfs"] = {"size": len(data), "sha256": sha256, "pointerSize": 134}
            siblings.append(sibling)
        payload = json.dumps({"id": repo, "modelId": repo, "sha": commit, "siblings": siblings})
        self._send(200, payload.encode(), {"Content-Type": "application/json"})

    def _file(self, repo: str, revision: str, name: str, body: bool) -> None:
        found = self._lookup(repo, revision)
        if found is None:
            return
        commit, files = found
        if name not in files:
            self._error(404, "EntryNotFound", f"Entry not found: {name}", {"X-Repo-Commit": commit})
            return
        data = files[name]
        headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_id(data)}"'}
        if lfs(name):
            headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
            headers["X-Linked-Size"] = str(len(data))
        if name in self.hub.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        if body and (match := re.match(r"bytes=(\d+)-", self.headers.get("Range", ""))):
            start = int(match[1])
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if not body:
            return self._send(200, b"", {**headers, "Content-Length": str(len(data))}, body=False)
        cut = self.hub.cut_after.pop(name, None)
        self._send(status, data[start:], headers, cut=cut, held=self.hub.held.get(name))

    def _error(self, status: int, code: str, message: str, extra: dict | None = None) -> None:
        payload = json.dumps({"error": message}).encode()
        self._send(
            status, payload, {"X-Error-Code": code, "X-Error-Message": message, **(extra or {})}
        )

    def _send(
        self,
        status: int,
        data: bytes,
        headers: dict,
        body: bool = True,
        cut: int | None = None,
        held: tuple[int, threading.Event] | None = None,
    ) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(data)), **headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body and self.command != "HEAD":
            data = data if cut is None else data[:cut]
            if held is not None:
                after, released = held
                self.wfile.write(data[:after])
                self.wfile.flush()
                if not released.wait(timeout=600):
                    return
                data = data[after:]
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except OSError:  # the client went away while the file was held
                return
        if cut is not None:
            self.close_connection = True
            self.connection.shutdown(2)
