//! The relative links of README.md and docs/*.md lead somewhere: every
//! `](path)` names a file or directory of the repository, and every
//! `](path#anchor)` (or `](#anchor)`) a heading of that file, with GitHub's
//! anchors. The README is short and links into docs/ for the rest, so a
//! renamed heading or a moved page would otherwise break it silently.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages checked: the README and every page of docs/, relative to the
/// repository.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("the repository has docs/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| Path::new("docs").join(p.file_name().unwrap()))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The lines outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// GitHub's anchor for a heading: lowercase, spaces to `-`, punctuation
/// other than `-` and `_` dropped (inline code marks included).
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a markdown text's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter_map(|line| {
            let rest = line.trim_start_matches('#');
            (line.starts_with('#') && rest.starts_with(' ')).then(|| slug(rest))
        })
        .collect()
}

/// The targets of the inline links `[text](target)` outside code blocks,
/// minus external ones, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = &after[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push((n + 1, target.to_owned()));
            }
            rest = &after[end..];
        }
    }
    out
}

/// What is wrong with the links of `page` (relative to the repository).
fn broken(page: &Path, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let dir = page.parent().unwrap_or(Path::new(""));
    for (line, target) in links(text) {
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let where_ = format!("{}:{line}: `{target}`", page.display());
        if path.is_empty() {
            let anchor = anchor.unwrap_or_default();
            if !anchors(text).contains(anchor) {
                out.push(format!(
                    "{where_}: no heading #{anchor} in {}",
                    page.display()
                ));
            }
            continue;
        }
        let file = dir.join(path);
        let full = repo().join(&file);
        if !full.exists() {
            out.push(format!("{where_}: no file {}", file.display()));
            continue;
        }
        let Some(anchor) = anchor else { continue };
        let Ok(linked) = std::fs::read_to_string(&full) else {
            out.push(format!("{where_}: {} is not a text file", file.display()));
            continue;
        };
        if !anchors(&linked).contains(anchor) {
            out.push(format!(
                "{where_}: no heading #{anchor} in {}",
                file.display()
            ));
        }
    }
    out
}

#[test]
fn readme_and_docs_links_resolve() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(repo().join(&page)).unwrap();
        checked += links(&text).len();
        problems.extend(broken(&page, &text));
    }
    assert!(checked > 20, "only {checked} links found");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_docs_page_is_linked_from_the_readme_and_links_back() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let targets: BTreeSet<String> = links(&readme)
        .into_iter()
        .map(|(_, t)| t.split('#').next().unwrap().to_owned())
        .collect();
    for page in pages().into_iter().skip(1) {
        let name = page.to_str().unwrap().to_owned();
        assert!(targets.contains(&name), "README.md does not link {name}");
        let text = std::fs::read_to_string(repo().join(&page)).unwrap();
        assert!(
            links(&text).iter().any(|(_, t)| t == "../README.md"),
            "{name} does not link back to ../README.md"
        );
    }
}

#[test]
fn the_checker_finds_broken_links() {
    let page = Path::new("docs/x.md");
    let text = "# Top\n\n## The `lock`, again\n\n[a](#top) [b](#the-lock-again) \
                [c](../README.md) [d](https://example.invalid/x#y)\n\
                ```\n[e](nowhere.md)\n```\n";
    assert_eq!(broken(page, text), Vec::<String>::new());
    let bad = "[a](#nope) [b](missing.md) [c](../README.md#no-such-heading)\n";
    let found = broken(page, bad);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].ends_with("no heading #nope in docs/x.md"),
        "{found:?}"
    );
    assert!(found[1].contains("no file docs/missing.md"), "{found:?}");
}
