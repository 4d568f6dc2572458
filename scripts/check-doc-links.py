#!/usr/bin/env python3
"""check-doc-links.py: every link in the project's Markdown files resolves.

    scripts/check-doc-links.py [FILE.md ...]     (default: every tracked *.md)

Checks, outside fenced code blocks and HTML comments:
  - a relative link [text](path) names a file or directory of the tree, and its
    #anchor, if any, a heading of that Markdown file (GitHub's anchors);
  - an in-page link [text](#anchor) names a heading of the same file;
  - a path in backquotes under one of the tree's top directories (`cmd/server`,
    `internal/config/keys.go`, `deploy/hawk.service`) exists, so that a moved
    file's mentions are found too.
Prints one line per broken link and exits 1 if there is any.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TOP_DIRS = ("cmd/", "internal/", "client/", "clients/", "deploy/", "docs/", "scripts/", "test/", ".ci/")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")


def prose(text):
    """The lines of text outside fenced code blocks and HTML comments, numbered."""
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    fenced = indented = False
    prev = ""
    for n, line in enumerate(text.split("\n"), 1):
        # An indented code block: indented by four after a blank line (or more of it);
        # an indented line right after text continues a list item.
        indented = line.startswith("    ") and (indented or prev.strip() == "") or (indented and line.strip() == "")
        prev = line
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced and not indented:
            yield n, line


def anchors(path, cache={}):
    """GitHub's anchors for the headings of the Markdown file at path."""
    if path not in cache:
        seen, out = {}, set()
        with open(path, encoding="utf-8") as f:
            for _, line in prose(f.read()):
                m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
                if not m:
                    continue
                slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
                k = seen.get(slug, 0)
                seen[slug] = k + 1
                out.add(slug if k == 0 else f"{slug}-{k}")
        cache[path] = out
    return cache[path]


def check(md):
    errors = []
    here = os.path.dirname(os.path.join(ROOT, md))
    with open(os.path.join(ROOT, md), encoding="utf-8") as f:
        text = f.read()
    for n, line in prose(text):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            full = os.path.normpath(os.path.join(here, path)) if path else os.path.join(ROOT, md)
            if not os.path.exists(full):
                errors.append(f"{md}:{n}: {target}: no such file")
            elif anchor and full.endswith(".md") and anchor not in anchors(full):
                errors.append(f"{md}:{n}: {target}: no heading #{anchor}")
        for path in CODE.findall(line):
            path = path.rstrip(".,:;")
            if path.startswith(TOP_DIRS) and not re.search(r"[*<>$…{]", path):
                if not os.path.exists(os.path.join(ROOT, path)):
                    errors.append(f"{md}:{n}: `{path}`: no such file")
    return errors


def main():
    files = sys.argv[1:] or subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    errors = [e for md in files for e in check(md)]
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
