""".dockerignore matching and the context walk, against moby/patternmatcher's rules and tables."""

from __future__ import annotations

import os

import pytest

from minirun.errors import MinirunError
from minirun.image.dockerfile.dockerignore import (
    DockerignoreError,
    Matcher,
    clean,
    load,
    read_patterns,
    walk,
)


@pytest.mark.parametrize("patterns, path, excluded", [
    # *.log: only at the top, * never crosses "/"
    (["*.log"], "a.log", True),
    (["*.log"], "logs/a.log", False),
    (["*.log"], "a.log.txt", False),
    # **: any number of directories, none included
    (["**/*.tmp"], "x.tmp", True),
    (["**/*.tmp"], "a/b/c/x.tmp", True),
    (["**/*.tmp"], "a/x.tmpl", False),
    (["**"], "anything/at/all", True),
    (["**/foo"], "foo", True),
    (["**/foo"], "a/b/foo", True),
    (["**/foo"], "a/barfoo", False),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**/b"], "ab", False),
    # a directory pattern excludes everything below it
    (["build"], "build", True),
    (["build"], "build/out/a.o", True),
    (["build"], "src/build", False),
    (["build"], "builder", False),
    (["build/"], "build/x", True),
    (["./build"], "build/x", True),
    # a leading "/" means the context root
    (["/root-only"], "root-only", True),
    (["/root-only"], "sub/root-only", False),
    # docs/** matches what is inside docs, not docs itself
    (["docs/**"], "docs", False),
    (["docs/**"], "docs/a", True),
    (["docs/**"], "docs/a/b.md", True),
    (["docs/**"], "docsx/a", False),
    # ? and classes
    (["a?c"], "abc", True),
    (["a?c"], "a/c", False),
    (["a?c"], "ac", False),
    (["[ab]x"], "ax", True),
    (["[ab]x"], "bx", True),
    (["[ab]x"], "cx", False),
    (["[^ab]x"], "cx", True),
    (["[^ab]x"], "ax", False),
    (["[a-c]"], "b", True),
    (["*/[0-9]*.txt"], "d/1a.txt", True),
    # escapes
    (["\\*"], "*", True),
    (["\\*"], "a", False),
    (["a\\?b"], "a?b", True),
    (["a\\?b"], "axb", False),
    # regex characters are plain characters to a pattern
    (["a.b"], "a.b", True),
    (["a.b"], "axb", False),
    (["f(1)+"], "f(1)+", True),
    (["*.{c,h}"], "x.{c,h}", True),
    (["*.{c,h}"], "x.c", False),
    # patterns are cleaned
    (["a/../b"], "b", True),
    (["a//b/./c"], "a/b/c", True),
    # comments and blank lines
    (["# *.log", "", "   "], "# *.log", False),
    ([" # not a comment"], "# not a comment", True),  # "#" counts only in the first column
    (["  *.log  "], "a.log", True),
    # nothing matches the context itself
    (["**"], ".", False),
    (["*"], "", False),
])
def test_excluded(patterns, path, excluded):
    assert Matcher(patterns).excluded(path) is excluded


ORDER = ["*.md", "!README.md", "README-secret.md"]


@pytest.mark.parametrize("path, excluded", [
    ("notes.md", True),
    ("README.md", False),  # a later "!" re-includes
    ("README-secret.md", True),  # and a later pattern excludes again
    ("main.c", False),
])
def test_last_matching_pattern_wins(path, excluded):
    assert Matcher(ORDER).excluded(path) is excluded


@pytest.mark.parametrize("patterns, path, excluded", [
    (["build", "!build/keep"], "build/keep", False),
    (["build", "!build/keep"], "build/keep/deep/file", False),
    (["build", "!build/keep"], "build/other", True),
    (["build", "!build/keep"], "build", True),
    (["!build/keep", "build"], "build/keep", True),  # order matters
    (["*", "!src", "src/*.o"], "src/a.c", False),
    (["*", "!src", "src/*.o"], "src/a.o", True),
    (["*", "!src", "src/*.o"], "README", True),
    (["**/*.go", "!vendor/**/*.go"], "vendor/x/y.go", False),
    (["**/*.go", "!vendor/**/*.go"], "cmd/y.go", True),
    (["/build", "!/build/keep"], "build/keep", False),
    (["! /build/keep", "keep"], "keep", True),
])
def test_exceptions(patterns, path, excluded):
    assert Matcher(patterns).excluded(path) is excluded


def test_could_include_under():
    m = Matcher(["build", "!build/keep", "cache", "node_modules", "!**/keep.txt"])
    assert m.could_include_under("build")  # "!build/keep" may re-include below
    assert not m.could_include_under("cache")  # no exception starts with "cache/"
    # Docker's test is a text prefix: "!**/keep.txt" does not reopen node_modules
    assert not m.could_include_under("node_modules")
    assert m.could_include_under("src")  # not excluded at all
    assert not Matcher(["vendor"]).could_include_under("vendor")
    assert Matcher(["vendor", "!vendor"]).could_include_under("vendor")


def test_read_patterns_normalizes_like_docker():
    lines = ["test1", "/test2", "/a/file/here", "", "lastfile", "# this is a comment",
             "! /inverted/abs/path", "!", "! ", "./x/", "a/../../b", "/"]
    assert read_patterns(lines) == ["test1", "test2", "a/file/here", "lastfile",
                                    "!inverted/abs/path", "!", "!", "x", "../b", "/"]


@pytest.mark.parametrize("path, cleaned", [
    ("", "."), ("a//b", "a/b"), ("a/./b/", "a/b"), ("a/../..", ".."), ("/../a", "/a"),
    ("//a", "/a"), ("./", "."), ("a/b/../c", "a/c"),
])
def test_clean(path, cleaned):
    assert clean(path) == cleaned


@pytest.mark.parametrize("pattern", ["!", "[", "a[", "[]", "[a-]", "[z-", "x\\", "[^]"])
def test_bad_patterns(pattern):
    with pytest.raises(DockerignoreError) as info:
        Matcher([pattern])
    assert str(info.value).startswith(".dockerignore: ")
    assert isinstance(info.value, MinirunError)


def test_good_bracket_patterns():
    assert Matcher(["[\\]]"]).excluded("]")
    assert Matcher(["[a\\-z]"]).excluded("-")
    assert not Matcher(["[a\\-z]"]).excluded("b")


# --- load and walk -------------------------------------------------------------------------------


def make_tree(root, files):
    for rel in files:
        path = os.path.join(root, rel)
        if rel.endswith("/"):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(rel)


def test_load_missing_file_matches_nothing(tmp_path):
    assert not load(str(tmp_path)).excluded("anything")


def test_load_reads_crlf_and_bom(tmp_path):
    (tmp_path / ".dockerignore").write_bytes(b"\xef\xbb\xbf*.log\r\n# comment\r\n!keep.log\r\n")
    m = load(str(tmp_path))
    assert m.excluded("a.log") and not m.excluded("keep.log")


def test_walk(tmp_path):
    make_tree(tmp_path, ["Dockerfile", "a.log", "src/main.c", "src/main.o", "build/out.o",
                         "build/keep/me.txt", "cache/big", "docs/index.md", "empty/",
                         "a-b/x", "a/x"])
    os.symlink("src", tmp_path / "link")
    (tmp_path / ".dockerignore").write_text(
        "# ignore\n*.log\nbuild\n!build/keep\ncache\n**/*.o\ndocs/**\n")
    got = list(walk(str(tmp_path), load(str(tmp_path))))
    assert got == [
        ".dockerignore", "Dockerfile", "a", "a/x", "a-b", "a-b/x",
        "build/keep", "build/keep/me.txt",  # re-included below an excluded "build"
        "docs", "empty", "link", "src", "src/main.c",
    ]


def test_walk_does_not_follow_symlinks(tmp_path):
    make_tree(tmp_path, ["real/file"])
    os.symlink("real", tmp_path / "alias")
    assert list(walk(str(tmp_path), Matcher([]))) == ["alias", "real", "real/file"]


def test_walk_skips_excluded_directories_without_reading_them(tmp_path):
    make_tree(tmp_path, ["secret/file", "ok"])
    os.chmod(tmp_path / "secret", 0)
    try:
        assert list(walk(str(tmp_path), Matcher(["secret"]))) == ["ok"]
    finally:
        os.chmod(tmp_path / "secret", 0o755)
