"""Print a digest of the resources built from each directory given (used across processes).

Run as `python -m tests.digest_resources DIR...`; prints JSON {DIR: sha256 of every resource's
deterministic serialization, in output order}.
"""

from __future__ import annotations

import hashlib
import json
import sys

from controlplane.dsl import load_files
from controlplane.translate import build_resources


def digest(directory: str) -> str:
    resources = build_resources(load_files([directory]))
    hasher = hashlib.sha256()
    for type_url, items in resources.items():
        hasher.update(type_url.encode())
        for item in items:
            hasher.update(item.SerializeToString(deterministic=True))
    return hasher.hexdigest()


if __name__ == "__main__":
    print(json.dumps({d: digest(d) for d in sys.argv[1:]}))
