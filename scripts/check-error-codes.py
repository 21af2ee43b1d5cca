#!/usr/bin/env python3
"""Checks the project's error codes (docs/errors.md): run by scripts/test.sh.

    python3 scripts/check-error-codes.py

Every `static let name = Code(rawValue: "code")` in Sources/ must be snake_case, unique within its type, and listed
in docs/errors.md under its type; the Python client's attestation codes (python/src/blindai/errors.py) must be the
Swift verifier's, in the same order; and every code docs/errors.md lists must still exist (codes are never renamed
or removed once published, so a code gone from the sources is a break the docs would hide).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def swift_codes():
    """{type name: [codes in source order]} for every error Code struct in Sources/."""
    found = {}
    for path in sorted((ROOT / "Sources").rglob("*.swift")):
        text = path.read_text()
        # The type that owns a Code struct: the nearest enclosing `public struct|enum X` before `struct Code`.
        for m in re.finditer(r"public struct Code: RawRepresentable", text):
            owner = re.findall(r"public (?:struct|enum) (\w+)\b", text[: m.start()])[-1]
            body_end = text.index("\n    }\n", m.end())
            codes = re.findall(r'static let `?\w+`? = Code\(rawValue: "([^"]+)"\)', text[m.end():body_end])
            found[owner] = codes
    return found


def documented():
    """{type name: [codes]} from docs/errors.md's tables (a `## TypeName` heading, then rows `| `code` | ...`)."""
    doc = (ROOT / "docs" / "errors.md").read_text()
    out, current = {}, None
    for line in doc.splitlines():
        h = re.match(r"^## `(\w+)`", line)
        if h:
            current = h.group(1)
            out[current] = []
            continue
        row = re.match(r"^\| `([a-z0-9_]+)` \|", line)
        if row and current:
            out[current].append(row.group(1))
    return out


def main():
    problems = []
    code = swift_codes()
    docs = documented()
    if not code:
        problems.append("no error Code types found in Sources/")
    for owner, codes in code.items():
        for c in codes:
            if not SNAKE.match(c):
                problems.append(f"{owner}: code '{c}' is not snake_case")
        dup = {c for c in codes if codes.count(c) > 1}
        if dup:
            problems.append(f"{owner}: duplicate codes {sorted(dup)}")
        if owner not in docs:
            problems.append(f"docs/errors.md has no section for {owner}")
            continue
        missing = [c for c in codes if c not in docs[owner]]
        if missing:
            problems.append(f"docs/errors.md does not list {owner} codes {missing}")
        gone = [c for c in docs[owner] if c not in codes]
        if gone:
            problems.append(f"{owner} no longer defines documented codes {gone} (published codes stay)")
    for owner in docs:
        if owner not in code:
            problems.append(f"docs/errors.md documents {owner}, which has no Code type in Sources/")
    py = (ROOT / "python" / "src" / "blindai" / "errors.py").read_text()
    m = re.search(r"ATTESTATION_CODES = \((.*?)\n\)", py, re.S)
    py_codes = re.findall(r'"([^"]+)"', m.group(1)) if m else []
    if py_codes != code.get("AttestationError", []):
        problems.append("python/src/blindai/errors.py ATTESTATION_CODES differ from AttestationError.Code")
    py_client = re.findall(r'^    code = "([^"]+)"', py, re.M)
    for c in py_client:
        if not SNAKE.match(c):
            problems.append(f"Python client code '{c}' is not snake_case")
    for c in code.get("BlindAIClientError", []):
        # The Python client raises AttestationError with the verifier's own code, not a class-wide one.
        if c != "attestation" and c not in py_client:
            problems.append(f"the Python client has no error with the Swift client's code '{c}'")
    for p in problems:
        print("error:", p, file=sys.stderr)
    total = sum(len(v) for v in code.values())
    print(f"error codes: {total} in {len(code)} types, snake_case, unique, documented"
          + ("" if not problems else f"; {len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
