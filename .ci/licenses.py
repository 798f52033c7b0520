#!/usr/bin/env python3
"""Every dependency's licence must be permissive. Reads `cargo metadata`, so it needs no
download: advisory databases cannot be fetched on the build machines, licences can be checked."""
import json
import re
import subprocess
import sys

ALLOWED = {
    "MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause", "BSD-3-Clause", "ISC",
    "Zlib", "0BSD", "CC0-1.0", "Unicode-3.0", "Unicode-DFS-2016", "BSL-1.0", "Unlicense",
    "CDLA-Permissive-2.0",
}

def acceptable(expression: str) -> bool:
    # An SPDX expression: every AND-part needs one acceptable OR-alternative.
    expression = expression.replace("/", " OR ")
    for conjunct in re.split(r"\s+AND\s+", expression.strip("() ")):
        choices = [c.strip("() ") for c in re.split(r"\s+OR\s+", conjunct)]
        if not any(choice in ALLOWED for choice in choices):
            return False
    return True

meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"]))
members = set(meta["workspace_members"])
bad = []
for package in meta["packages"]:
    if package["id"] in members:
        continue
    licence = package.get("license") or ""
    if not licence or not acceptable(licence):
        bad.append(f"{package['name']} {package['version']}: {licence or 'no licence field'}")
checked = len(meta["packages"]) - len(members)
if bad:
    print("licences not on the allowlist:\n  " + "\n  ".join(sorted(bad)))
    sys.exit(1)
print(f"licences: {checked} dependencies checked, all permissive")
