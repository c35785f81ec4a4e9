"""Where huggingface_hub finds a model in a hub cache, offline, as the reference for the workbench's resolution.

usage: hf_cache_reference.py CACHE_DIR REPO_ID [REVISION]
Prints JSON {"snapshot": path from snapshot_download(local_files_only=True), "files": the repo's files per
scan_cache_dir}.
"""
import json
import sys

from huggingface_hub import scan_cache_dir, snapshot_download

cache, repo = sys.argv[1], sys.argv[2]
revision = sys.argv[3] if len(sys.argv) > 3 else None
snapshot = snapshot_download(repo, revision=revision, cache_dir=cache, local_files_only=True)
info = scan_cache_dir(cache)
files = sorted(f.file_name for r in info.repos if r.repo_id == repo for rev in r.revisions for f in rev.files)
print(json.dumps({"snapshot": snapshot, "files": files}))
