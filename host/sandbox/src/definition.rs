//! A program made from a template component: the component's bytes followed by a custom
//! section, `oshirase:definition`, naming the program (code, name, division, contact,
//! category, link), its occasions' wording and its settings' defaults. The component runs
//! unchanged; [`crate::PluginEngine::load`] reads the section and describes the program as
//! the definition says. So a program staff make from conditions is one self-contained
//! artefact, with its own hash, version history and cache entry, and it can be tested,
//! dry-run and published like any other.

use std::collections::BTreeMap;

use oshirase_sdk::{Category, ProgramInfo};
use serde::{Deserialize, Serialize};

use crate::PluginError;

/// The name of the custom section holding a definition.
pub const DEFINITION_SECTION: &str = "oshirase:definition";

/// What a definition says of its program; the component's own description supplies the
/// rest (the data it reads, its settings' types, its occasion keys, its schedule).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    #[serde(flatten)]
    pub program: DefinedProgram,
    /// Each occasion's title and wording, by the component's occasion key.
    pub occasions: Vec<DefinedOccasion>,
    /// The settings' defaults, as staff would type them, by name; the others keep the
    /// component's defaults.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// Who the program is: what staff and residents know it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinedProgram {
    pub code: String,
    pub name: String,
    pub division: String,
    pub contact: String,
    /// `ChildRearing`, `Health`, `Vaccination`, `Allowance` or `Living`.
    pub category: String,
    /// The city's page about the program.
    pub source_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinedOccasion {
    pub key: String,
    pub title: String,
    pub template: String,
}

/// The category a definition names.
pub fn category_named(name: &str) -> Option<Category> {
    Some(match name {
        "ChildRearing" => Category::ChildRearing,
        "Health" => Category::Health,
        "Vaccination" => Category::Vaccination,
        "Allowance" => Category::Allowance,
        "Living" => Category::Living,
        _ => return None,
    })
}

/// `component` with `definition` appended as its custom section. A component that carries
/// a definition already is refused: a program is made from a template, not from another
/// program.
pub fn with_definition(component: &[u8], definition: &Definition) -> Result<Vec<u8>, PluginError> {
    if definition_of(component)?.is_some() {
        return Err(invalid("the component is a program made from a template already".into()));
    }
    let data = serde_json::to_vec(definition).expect("a definition serializes");
    let section = wasm_encoder::CustomSection { name: DEFINITION_SECTION.into(), data: data.into() };
    let mut bytes = component.to_vec();
    // A custom section has the id 0 in a component as in a module.
    bytes.push(0);
    wasm_encoder::Encode::encode(&section, &mut bytes);
    Ok(bytes)
}

/// The definition `wasm` carries, if any; a section that is not a definition, or two of
/// them, make the component invalid.
pub fn definition_of(wasm: &[u8]) -> Result<Option<Definition>, PluginError> {
    let mut found = None;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|error| invalid(format!("cannot read the component: {error}")))?;
        if let wasmparser::Payload::CustomSection(section) = payload
            && section.name() == DEFINITION_SECTION
        {
            if found.is_some() {
                return Err(invalid(format!("two {DEFINITION_SECTION} sections")));
            }
            let definition = serde_json::from_slice(section.data())
                .map_err(|error| invalid(format!("the {DEFINITION_SECTION} section: {error}")))?;
            found = Some(definition);
        }
    }
    Ok(found)
}

/// The component's own description `info` as `definition` describes the program. An
/// occasion key or a setting the component does not declare, a category that does not
/// exist, or a default its setting's type refuses make the component invalid.
pub fn apply(mut info: ProgramInfo, definition: Definition) -> Result<ProgramInfo, PluginError> {
    let program = definition.program;
    info.category = category_named(&program.category)
        .ok_or_else(|| invalid(format!("definition: there is no category {:?}", program.category)))?;
    for occasion in definition.occasions {
        let declared = info
            .occasions
            .iter_mut()
            .find(|declared| declared.key == occasion.key)
            .ok_or_else(|| invalid(format!("definition: the component has no occasion {:?}", occasion.key)))?;
        (declared.title, declared.template) = (occasion.title, occasion.template);
    }
    for (name, text) in definition.settings {
        let declared = info
            .settings
            .iter_mut()
            .find(|declared| declared.name == name)
            .ok_or_else(|| invalid(format!("definition: the component has no setting {name:?}")))?;
        declared.default =
            declared.kind.parse(&text).map_err(|problem| invalid(format!("definition: setting {name}: {problem}")))?;
    }
    (info.code, info.name, info.division, info.contact, info.source_url) =
        (program.code, program.name, program.division, program.contact, program.source_url);
    Ok(info)
}

fn invalid(message: String) -> PluginError {
    PluginError::Invalid(anyhow::anyhow!(message))
}
