//! The README's embedding example is the crate's doctest, word for word, so
//! that what a reader copies is what the doctest runs.

#[test]
fn the_readme_shows_the_embedding_doctest_as_it_is() {
    let readme = include_str!("../../../README.md");
    let doctest = include_str!("../src/embedding.md").trim();
    let section = readme
        .split("### Embedding the agent")
        .nth(1)
        .expect("README has an \"Embedding the agent\" section");
    assert!(
        section.contains(doctest),
        "README's embedding example differs from crates/local-agent/src/embedding.md"
    );
}
