#!/usr/bin/env python3
"""Checks that docs/architecture.md's module graph is Package.swift's, and the dependency rules: run by test.sh.

    python3 scripts/check-architecture.py           check (exit 1 on a difference, with the lines to change)
    python3 scripts/check-architecture.py --write   rewrite the graph in docs/architecture.md from Package.swift

The graph is a Mermaid block between the `package-graph` markers of docs/architecture.md: every target of the
package and every dependency arrow, external packages as one node each. The rules checked on the same data
(`swift package dump-package`, which reads the manifest without building anything):
  * the engine's modules and the engine's test targets reach none of the networking packages (Hummingbird, NIO,
    NIOSSL, nio-extras, AsyncHTTPClient) and no attestation or server target;
  * the attestation modules reach no engine target;
  * only the server side, the clients, the CLI and their tests combine engine and attestation.
"""
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- package-graph:begin -->", "<!-- package-graph:end -->"

ENGINE = {"CBlindAIKernels", "BlindAINumPy", "BlindAITensor", "BlindAIKernels", "BlindAIGraph", "BlindAIOperators",
          "BlindAIONNX", "BlindAIConformance"}
# The engine's layers, bottom up: a layer may depend on the layers before it, never on one after it.
ENGINE_LAYERS = ["BlindAITensor", "BlindAIKernels", "BlindAIGraph", "BlindAIOperators", "BlindAIONNX", "BlindAIConformance"]
ENGINE_TESTS = {"BlindAITensorTests", "BlindAIEngineTests", "BlindAITestSupport"}
ATTESTATION = {"BlindAIAttestation", "BlindAIAttestationProducer", "CBlindAIAttestationShims"}
NETWORKING = {"hummingbird", "swift-nio", "swift-nio-ssl", "swift-nio-extras", "async-http-client"}
SERVER = {"BlindAIServer", "BlindAIServerAttestation", "BlindAIClient", "BlindAICommands", "blindai"}


def manifest():
    out = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def edges(package):
    """[(target, dependency)] where a dependency is a target name or `pkg:<package identity>`."""
    result = []
    for t in package["targets"]:
        seen = set()
        for d in t["dependencies"]:
            if "byName" in d:
                dep = d["byName"][0]
            elif "target" in d:
                dep = d["target"][0]
            else:
                dep = "pkg:" + d["product"][1]
            if dep not in seen:
                seen.add(dep)
                result.append((t["name"], dep))
    return result


def graph_block(package):
    kinds = {t["name"]: t["type"] for t in package["targets"]}
    lines = ["```mermaid", "graph TD"]
    for name in [t["name"] for t in package["targets"]]:
        shape = f'{name}[["{name} (test)"]]' if kinds[name] == "test" else f"{name}([{name}])" if kinds[name] == "executable" else f"{name}[{name}]"
        lines.append(f"    {shape}")
    for a, b in edges(package):
        node = b.replace("pkg:", "pkg_").replace("-", "_")
        if b.startswith("pkg:"):
            lines.append(f'    {a} --> {node}(("{b[4:]}"))')
        else:
            lines.append(f"    {a} --> {b}")
    lines.append("```")
    return "\n".join(lines)


def closure(package, start):
    deps = {}
    for a, b in edges(package):
        deps.setdefault(a, []).append(b)
    seen, todo = set(), [start]
    while todo:
        n = todo.pop()
        for d in deps.get(n, []):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def main():
    package = manifest()
    block = graph_block(package)
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        print(f"error: {DOC.relative_to(ROOT)} has no {BEGIN} ... {END} block", file=sys.stderr)
        return 1
    head, rest = doc.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    if "--write" in sys.argv:
        DOC.write_text(head + BEGIN + "\n" + block + "\n" + END + tail)
        print(f"wrote the package graph into {DOC.relative_to(ROOT)}")
    problems = []
    if current.strip() != block.strip() and "--write" not in sys.argv:
        want, have = set(block.strip().splitlines()), set(current.strip().splitlines())
        for line in sorted(want - have):
            problems.append(f"docs/architecture.md lacks: {line.strip()}")
        for line in sorted(have - want):
            problems.append(f"docs/architecture.md has, Package.swift does not: {line.strip()}")
        if not problems:
            problems.append("docs/architecture.md's package graph is out of order (run with --write)")
    names = {t["name"] for t in package["targets"]}
    for group in (ENGINE, ENGINE_TESTS, ATTESTATION):
        for t in group:
            if t not in names:
                problems.append(f"{t} is named in scripts/check-architecture.py but is not a target")
    for t in sorted(ENGINE | ENGINE_TESTS):
        reach = closure(package, t)
        bad = sorted(d for d in reach if d[4:] in NETWORKING or d in ATTESTATION or d in SERVER)
        if bad:
            problems.append(f"{t} reaches {bad}: the engine and its tests must not depend on networking, attestation or the server")
        print(f"{t}: {', '.join(sorted(reach)) or '(nothing)'}")
    for i, t in enumerate(ENGINE_LAYERS):
        above = sorted(closure(package, t) & set(ENGINE_LAYERS[i + 1:]))
        if above:
            problems.append(f"{t} reaches {above}, a layer above it (order: {' < '.join(ENGINE_LAYERS)})")
    for t in sorted(ATTESTATION):
        bad = sorted(closure(package, t) & ENGINE)
        if bad:
            problems.append(f"{t} reaches engine targets {bad}")
    for p in problems:
        print("error:", p, file=sys.stderr)
    if not problems:
        print(f"architecture: the graph in docs/architecture.md is Package.swift's ({len(edges(package))} arrows); "
              "the engine's layers point down only; the engine reaches no networking, attestation or server target; "
              "attestation reaches no engine target")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
