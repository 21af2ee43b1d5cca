#!/usr/bin/env python3
"""Checks that each operator lives in one place (run by scripts/test.sh).

- Every file of Sources/BlindAIOperators (except StandardOperators.swift) is one family: it defines exactly one
  `static func registerX(_ r: inout OperatorRegistry)`, and StandardOperators.families lists each such function
  exactly once. (OperatorLayoutTests checks at run time that no operator type is registered by two families.)
- Operators are registered only there: no `.register(` call on a registry outside BlindAIOperators' sources.
- An operator's shape rule (`ShapeInferring`) and in-place run (`InPlaceElementwise`) are in the file that declares
  the operator; no other module conforms anything to them (no per-operator table of rules or capabilities).
- The graph and kernel modules name no operator type: no string literal there is an op type registered by an
  operator file (a planner special case or a table keyed by op type would be one).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCES = ROOT / "Sources"
OPS = SOURCES / "BlindAIOperators"
FRAMEWORK = ("ShapeInferring", "InPlaceElementwise")
REGISTER_FN = re.compile(r"static func (register\w+)\(_ r: inout OperatorRegistry\)")
DECL = re.compile(r"^\s*(?:(?:public|package|private|fileprivate|final|indirect)\s+)*(?:struct|enum|class)\s+(\w+)", re.M)
CONFORM = re.compile(r"^\s*(?:(?:public|package|private|fileprivate|final|indirect)\s+)*(?:extension|struct|enum|class)\s+(\w+)\s*(?:<[^>]*>)?\s*:([^{]*)\{", re.M)


def code_only(text):
    """The text without comments (keeps string literals)."""
    return re.sub(r"//[^\n]*", "", text)


def main():
    problems = []
    files = sorted(p for p in OPS.rglob("*.swift") if p.name != "StandardOperators.swift")
    listed = re.findall(r"\(\"\w+\", (register\w+)\)", (OPS / "StandardOperators.swift").read_text())
    for name in sorted(set(listed)):
        if listed.count(name) > 1:
            problems.append(f"StandardOperators.families lists {name} {listed.count(name)} times")
    defined = {}
    op_types = set()
    for f in files:
        text = code_only(f.read_text())
        fns = REGISTER_FN.findall(text)
        rel = f.relative_to(ROOT)
        if len(fns) != 1:
            problems.append(f"{rel} defines {len(fns)} registration functions ({', '.join(fns) or 'none'}); a family file has one")
        for fn in fns:
            defined[fn] = rel
            if fn not in listed:
                problems.append(f"{rel}: {fn} is not listed in StandardOperators.families")
        # op type literals: in register("X"...) calls and in the (name, ...) tables the registration loops read.
        start = text.find("static func register")
        if start >= 0:
            op_types.update(re.findall(r"\"([A-Z][A-Za-z0-9]+)\"", text[start:]))
        declared = set(DECL.findall(text))
        for m in CONFORM.finditer(text):
            name, protocols = m.group(1), m.group(2)
            for proto in FRAMEWORK:
                if re.search(rf"\b{proto}\b", protocols) and name not in declared:
                    problems.append(f"{rel}: {name}'s {proto} conformance is not in the file that declares {name}")
    for fn in listed:
        if fn not in defined:
            problems.append(f"StandardOperators.families lists {fn}, which no family file defines")
    for f in sorted(SOURCES.rglob("*.swift")):
        if OPS in f.parents:
            continue
        text = code_only(f.read_text())
        rel = f.relative_to(ROOT)
        for m in CONFORM.finditer(text):
            for proto in FRAMEWORK:
                if re.search(rf"\b{proto}\b", m.group(2)):
                    problems.append(f"{rel}: {m.group(1)} conforms to {proto} outside BlindAIOperators")
        if re.search(r"\br\.register\(|\.register\(\"", text):
            problems.append(f"{rel} registers an operator outside BlindAIOperators")
        if f.parts[-2] in ("BlindAIGraph", "BlindAIKernels") or "BlindAIGraph" in f.parts or "BlindAIKernels" in f.parts:
            named = sorted(set(re.findall(r"\"([A-Z][A-Za-z0-9]+)\"", text)) & op_types)
            if named:
                problems.append(f"{rel} names operator types {named}: the graph and the kernels know no operator")
    for p in problems:
        print("error:", p, file=sys.stderr)
    if problems:
        return 1
    print(f"operator layout: {len(files)} family files, each with one registration function listed in "
          f"StandardOperators.families; shape rules and in-place runs beside their operators; the graph and kernels "
          f"name none of the {len(op_types)} operator types")
    return 0


if __name__ == "__main__":
    sys.exit(main())
