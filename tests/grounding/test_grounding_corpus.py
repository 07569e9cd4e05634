"""Corpus loading: supported files, HTML to text with headings, UTF-8 errors naming the file, digests."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshift.errors import ConfigError, DataValidationError
from modelshift.grounding.corpus import html_to_text, load_corpus
from tests.grounding.conftest import corpus_dir


def test_example_corpora_load_sorted_with_markdown_kind(example_app: str) -> None:
    corpus = load_corpus(corpus_dir(example_app))
    paths = [d.path for d in corpus.documents]
    assert paths == sorted(paths)
    assert len(paths) >= 10
    assert all(d.kind == "markdown" and d.text.strip() for d in corpus.documents)
    assert len(corpus.digest) == 64


def test_mixed_folder_reads_md_txt_html_and_skips_others(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\n\nalpha\n", encoding="utf-8")
    (tmp_path / "sub" / "b.txt").write_text("\ufeffbeta text\n", encoding="utf-8")
    (tmp_path / "c.html").write_text("<h2>Gamma</h2><p>gamma &amp; more</p>", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\xff\xfe")
    corpus = load_corpus(tmp_path)
    assert [(d.path, d.kind) for d in corpus.documents] == [
        ("a.md", "markdown"),
        ("c.html", "html"),
        ("sub/b.txt", "text"),
    ]
    texts = {d.path: d.text for d in corpus.documents}
    assert texts["sub/b.txt"] == "beta text\n"  # BOM dropped
    assert texts["c.html"] == "## Gamma\n\ngamma & more\n"
    assert corpus.total_chars == sum(len(t) for t in texts.values())


def test_single_file_is_a_corpus(tmp_path: Path) -> None:
    f = tmp_path / "one.md"
    f.write_text("# One\n", encoding="utf-8")
    corpus = load_corpus(f)
    assert [d.path for d in corpus.documents] == ["one.md"]


def test_digest_changes_with_a_byte_and_a_name(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("alpha\n", encoding="utf-8")
    first = load_corpus(tmp_path).digest
    assert load_corpus(tmp_path).digest == first
    (tmp_path / "a.md").write_text("alpha!\n", encoding="utf-8")
    second = load_corpus(tmp_path).digest
    assert second != first
    (tmp_path / "a.md").rename(tmp_path / "b.md")
    assert load_corpus(tmp_path).digest not in (first, second)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<h1>Title</h1><p>Body  text\n here.</p>", "# Title\n\nBody text here.\n"),
        ("<h6>Deep</h6>", "###### Deep\n"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two\n"),
        ("<p>a<br>b</p>", "a\nb\n"),
        ("<script>var x = 1;</script><style>p{}</style><p>shown</p>", "shown\n"),
        ("<pre>keep   spaces\n  here</pre>", "keep   spaces\nhere\n"),
        ("<table><tr><th>k</th><td>v</td></tr></table>", "| k | v\n"),
        ("<p>caf&eacute; &#8212; &lt;tag&gt;</p>", "café — <tag>\n"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_missing_corpus_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does-not-exist does not exist"):
        load_corpus(tmp_path / "does-not-exist")


def test_folder_without_documents_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "notes.rst").write_text("x", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"holds no \.md"):
        load_corpus(tmp_path)


def test_only_empty_documents_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "b.html").write_text("<p> </p>", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"all 2 document\(s\) are empty"):
        load_corpus(tmp_path)


def test_non_utf8_document_names_the_file_and_byte(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("fine\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes("caf\u00e9 ok".encode("latin-1"))
    with pytest.raises(DataValidationError) as info:
        load_corpus(tmp_path)
    assert "bad.txt is not valid UTF-8 (byte 3" in str(info.value)
    assert "iconv" in str(info.value)
    assert info.value.context["offset"] == 3
