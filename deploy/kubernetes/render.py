#!/usr/bin/env python3
"""Renders a kustomization (the subset these manifests use: `resources` files and directories,
strategic-merge `patches` by kind and name, lists of named items merged by name) to stdout as one
YAML stream, for checking without kubectl. Deploy with `kubectl apply -k` itself.

    python3 deploy/kubernetes/render.py deploy/kubernetes/overlays/dev
"""
import copy
import os
import sys

import yaml


def merge(base, patch):
    """A strategic merge: maps merge key by key, lists of maps with `name` merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(
        isinstance(i, dict) and "name" in i for i in base + patch
    ):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            match = next((i for i, b in enumerate(out) if b["name"] == item["name"]), None)
            if match is None:
                out.append(copy.deepcopy(item))
            else:
                out[match] = merge(out[match], item)
        return out
    return copy.deepcopy(patch)


def identity(doc):
    return (doc["kind"], doc["metadata"]["name"])


def render(directory):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        kustomization = yaml.safe_load(f)
    docs = []
    for resource in kustomization.get("resources", []):
        path = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(path):
            docs.extend(render(path))
        else:
            with open(path) as f:
                docs.extend(d for d in yaml.safe_load_all(f) if d)
    for patch in kustomization.get("patches", []):
        with open(os.path.join(directory, patch["path"])) as f:
            for change in yaml.safe_load_all(f):
                targets = [i for i, d in enumerate(docs) if identity(d) == identity(change)]
                if not targets:
                    sys.exit(f"{patch['path']}: no {identity(change)} to patch")
                for i in targets:
                    docs[i] = merge(docs[i], change)
    names = [identity(d) for d in docs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        sys.exit(f"{directory}: resources defined twice: {sorted(duplicates)}")
    return docs


if __name__ == "__main__":
    yaml.safe_dump_all(render(sys.argv[1]), sys.stdout, sort_keys=False)
