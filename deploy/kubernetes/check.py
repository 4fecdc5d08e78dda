#!/usr/bin/env python3
"""Checks every overlay: renders it (render.py), validates each manifest against the Kubernetes
schema (kubernetes-validate, strict, installed from PyPI into a venv under target/), and runs
`estuary check-config` on the estuary.toml it carries with each estuary container's environment
(Secret values replaced by placeholders), so a misspelt variable or field fails here, not in a pod.

    python3 deploy/kubernetes/check.py [path/to/estuary]
"""
import os
import re
import subprocess
import sys
import tempfile

import yaml

import render

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
VENV = os.path.join(ROOT, "target", "kubernetes-validate")


def validator():
    tool = os.path.join(VENV, "bin", "kubernetes-validate")
    if not os.path.exists(tool):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet", "kubernetes-validate"], check=True)
    return tool


def placeholder(name, source):
    if name.endswith("REDIS_URL"):
        return "redis://placeholder:6379/"
    if "fieldRef" in source and source["fieldRef"]["fieldPath"] == "status.podIP":
        return "10.0.0.7"
    return "placeholder-0123456789abcdef0123456789abcdef"


def expand(value, env):
    """`$(VAR)` of an earlier variable, as the kubelet expands it."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)


def check_overlay(overlay, tool, estuary):
    docs = render.render(overlay)
    with tempfile.TemporaryDirectory() as tmp:
        manifests = os.path.join(tmp, "manifests.yaml")
        with open(manifests, "w") as f:
            yaml.safe_dump_all(docs, f, sort_keys=False)
        subprocess.run([tool, "--strict", "--quiet", manifests], check=True)
        config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "estuary")
        toml = os.path.join(tmp, "estuary.toml")
        with open(toml, "w") as f:
            f.write(config["data"]["estuary.toml"])
        workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
        checked = 0
        for workload in workloads:
            for container in workload["spec"]["template"]["spec"]["containers"]:
                if container["name"] != "estuary":
                    continue
                env = {k: v for k, v in os.environ.items() if not k.startswith("ESTUARY_")}
                for var in container.get("env", []):
                    if "value" in var:
                        env[var["name"]] = expand(var["value"], env)
                    else:
                        env[var["name"]] = placeholder(var["name"], var["valueFrom"])
                result = subprocess.run([estuary, "check-config", "--config", toml], env=env, capture_output=True, text=True)
                if result.returncode != 0:
                    sys.exit(f"{overlay}: {workload['kind']}/{workload['metadata']['name']}: {result.stderr.strip()}")
                checked += 1
        name = os.path.relpath(overlay, ROOT)
        print(f"{name}: {len(docs)} manifests valid; estuary's config checked in {checked} workloads")


if __name__ == "__main__":
    estuary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug", "estuary")
    tool = validator()
    overlays = os.path.join(HERE, "overlays")
    for name in sorted(os.listdir(overlays)):
        check_overlay(os.path.join(overlays, name), tool, estuary)
