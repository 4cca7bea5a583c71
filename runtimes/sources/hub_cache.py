"""Deleting what an `hf:` source downloaded from the local Hugging Face cache (`localoip rm`).

`hf:owner/repo` deletes the whole repository, `hf:owner/repo@rev` one revision, and a quant or
a path only those files (every part of a split GGUF), keeping blobs another file still uses.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, scan_cache_dir
from huggingface_hub.errors import CacheNotFound
from huggingface_hub.utils import CachedFileInfo, CachedRepoInfo, CachedRevisionInfo
from localoip.runtimes.sources.errors import SourceError
from localoip.runtimes.sources.hub_files import choose_gguf
from localoip.runtimes.sources.hub_ref import HubRef


@dataclass(frozen=True, slots=True)
class Removed:
    """What `remove` deleted: how many files, how many bytes of blobs, and from where."""

    files: int
    size: int
    where: str


def remove(ref: HubRef) -> Removed:
    """Delete the source's files from the cache; SourceError when none are there."""
    repo = _cached_repo(ref)
    revisions = [r for r in repo.revisions if _is_revision(r, ref.revision)]
    if not revisions:
        raise SourceError(f"{ref}: revision {ref.revision!r} is not in the local cache")
    if ref.quant is None and ref.path is None:
        if ref.revision is None or len(revisions) == len(repo.revisions):
            shutil.rmtree(repo.repo_path)
            return Removed(repo.nb_files, repo.size_on_disk, str(repo.repo_path))
        strategy = scan_cache_dir().delete_revisions(*(r.commit_hash for r in revisions))
        strategy.execute()
        files = sum(r.nb_files for r in revisions)
        return Removed(files, strategy.expected_freed_size, str(repo.repo_path))
    return _remove_files(repo, ref, revisions)


def _cached_repo(ref: HubRef) -> CachedRepoInfo:
    try:
        cache = scan_cache_dir()
    except CacheNotFound:
        cache = None
    for repo in cache.repos if cache else ():
        if repo.repo_type == "model" and repo.repo_id == ref.repo_id:
            return repo
    raise SourceError(f"{ref} is not downloaded: {constants.HF_HUB_CACHE} has no {ref.repo_id}")


def _is_revision(revision: CachedRevisionInfo, wanted: str | None) -> bool:
    return wanted is None or wanted in revision.refs or revision.commit_hash.startswith(wanted)


def _remove_files(
    repo: CachedRepoInfo, ref: HubRef, revisions: list[CachedRevisionInfo]
) -> Removed:
    """Delete the quant's or path's files from the given revisions, and their blobs when no
    other file uses them; the repository folder goes too when nothing is left in it."""
    doomed: list[CachedFileInfo] = []
    for revision in revisions:
        by_name = {
            f.file_path.relative_to(revision.snapshot_path).as_posix(): f for f in revision.files
        }
        try:
            model = choose_gguf(ref, by_name)
        except SourceError:
            continue
        doomed += [by_name[name] for name in model.files if name in by_name]
    if not doomed:
        raise SourceError(f"{ref} is not downloaded (the cache has {repo.repo_id} without it)")
    kept_blobs = {f.blob_path for r in repo.revisions for f in r.files if f not in doomed}
    freed = {f.blob_path: f.size_on_disk for f in doomed if f.blob_path not in kept_blobs}
    for file in doomed:
        file.file_path.unlink(missing_ok=True)
    for blob in freed:
        Path(blob).unlink(missing_ok=True)
    if all(f in doomed for r in repo.revisions for f in r.files):
        shutil.rmtree(repo.repo_path)
    return Removed(len(doomed), sum(freed.values()), str(repo.repo_path))
