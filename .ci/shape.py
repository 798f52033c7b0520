"""Fails when the code's shape breaks the dependency rule: the domain crate gains a normal
dependency other than serde or thiserror, an inner ring depends on an outer one
(domain <- ports <- service <- adapters <- server), or one adapter crate depends on another.
Reads cargo's own metadata, so it sees exactly what the build sees."""

import json
import subprocess
import sys

meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
packages = {p["name"]: p for p in meta["packages"]}


def ring(package):
    path = package["manifest_path"].replace("\\", "/")
    for name in ("domain", "ports", "service"):
        if f"/crates/{name}/" in path:
            return name
    return "adapter" if "/crates/adapters/" in path else "outer"


allowed = {
    "domain": set(),
    "ports": {"domain"},
    "service": {"domain", "ports"},
    "adapter": {"domain", "ports", "service"},
}
problems = []
for name, package in sorted(packages.items()):
    r = ring(package)
    if r not in allowed:
        continue
    for dep in package["dependencies"]:
        if dep.get("kind") not in (None, "normal"):
            continue  # dev- and build-dependencies do not ship
        target = dep["name"]
        if target in packages:
            if ring(packages[target]) not in allowed[r]:
                problems.append(f"{name} ({r}) depends on {target} ({ring(packages[target])})")
        elif r == "domain" and target not in ("serde", "thiserror"):
            problems.append(f"{name} (domain) depends on {target}: only serde and thiserror")
for problem in problems:
    print(f"dependency rule broken: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
rings = {}
for name, package in packages.items():
    rings.setdefault(ring(package), []).append(name)
print("dependency rule holds: " + "; ".join(f"{r}: {len(n)}" for r, n in sorted(rings.items())))
