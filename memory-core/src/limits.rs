//! Input limits and the validation pass every write goes through before anything is stored.
//!
//! Every size a caller controls is bounded here. A violation is an `InvalidInput` error that
//! names the field, the limit and the value; validation never writes and never truncates.

use crate::episode::{Completion, Episode, NewStep, TaskContext};
use crate::error::{Error, Result};
use crate::id::truncate_for_message;

/// Bounds on everything a caller controls. Defaults are documented per field and in
/// `docs/configuration.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest episode description, in chars. Default 10,000.
    pub max_description_chars: usize,
    /// Most steps in one episode. Default 1,000.
    pub max_steps: usize,
    /// Most tags on one episode. Default 100.
    pub max_tags: usize,
    /// Longest tag, in chars. Default 64.
    pub max_tag_chars: usize,
    /// Longest namespace, domain, task type or tool name, in chars. Default 128.
    pub max_name_chars: usize,
    /// Largest step input and largest step output, each in bytes. Default 65,536 (64 KiB).
    pub max_step_payload_bytes: usize,
    /// Longest verdict, reflection or language, in chars. Default 10,000.
    pub max_text_chars: usize,
    /// The embedding dimension of this store. `None` (default): embeddings are refused with an
    /// error saying how to enable them. Fixed for the life of a store.
    pub embedding_dimension: Option<usize>,
    /// Largest page `list_episodes` may be asked for. Default 1,000; a larger request is an
    /// error, never silently capped.
    pub max_page_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_description_chars: 10_000,
            max_steps: 1_000,
            max_tags: 100,
            max_tag_chars: 64,
            max_name_chars: 128,
            max_step_payload_bytes: 64 * 1024,
            max_text_chars: 10_000,
            embedding_dimension: None,
            max_page_size: 1_000,
        }
    }
}

/// The characters allowed in namespaces, domains and task types: ASCII letters, digits and
/// `_ . : -`.
pub const NAME_CHARS: &str = "[A-Za-z0-9_.:-]";

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')
}

impl Limits {
    /// Check the limits themselves: every bound must be at least 1.
    pub fn validate(&self) -> Result<()> {
        let bounds = [
            ("limits.max_description_chars", self.max_description_chars),
            ("limits.max_steps", self.max_steps),
            ("limits.max_tags", self.max_tags),
            ("limits.max_tag_chars", self.max_tag_chars),
            ("limits.max_name_chars", self.max_name_chars),
            ("limits.max_step_payload_bytes", self.max_step_payload_bytes),
            ("limits.max_text_chars", self.max_text_chars),
            ("limits.max_page_size", self.max_page_size),
            (
                "limits.embedding_dimension",
                self.embedding_dimension.unwrap_or(1),
            ),
        ];
        for (field, value) in bounds {
            if value == 0 {
                return Err(Error::invalid(field, "at least 1", "0"));
            }
        }
        if self.max_steps > u32::MAX as usize {
            return Err(Error::invalid(
                "limits.max_steps",
                format!("at most {}", u32::MAX),
                self.max_steps.to_string(),
            ));
        }
        Ok(())
    }

    /// A namespace, domain or task type: 1..=`max_name_chars` chars of [`NAME_CHARS`].
    pub fn check_name(&self, field: &str, value: &str) -> Result<()> {
        let len = value.chars().count();
        if len == 0 || len > self.max_name_chars {
            return Err(Error::invalid(
                field,
                format!("1 to {} chars", self.max_name_chars),
                format!("{len} chars"),
            ));
        }
        if let Some(c) = value.chars().find(|c| !is_name_char(*c)) {
            return Err(Error::invalid(
                field,
                format!("characters {NAME_CHARS}"),
                format!("{:?} in {:?}", c, truncate_for_message(value)),
            ));
        }
        Ok(())
    }

    fn check_label(&self, field: &str, value: &str, max: usize) -> Result<()> {
        let len = value.chars().count();
        if len == 0 || len > max {
            return Err(Error::invalid(
                field,
                format!("1 to {max} chars"),
                format!("{len} chars"),
            ));
        }
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(Error::invalid(
                field,
                "no control characters",
                format!("{c:?} in {:?}", truncate_for_message(value)),
            ));
        }
        Ok(())
    }

    fn check_text(&self, field: &str, value: &str, max: usize) -> Result<()> {
        let len = value.chars().count();
        if len > max {
            return Err(Error::invalid(
                field,
                format!("at most {max} chars"),
                format!("{len} chars"),
            ));
        }
        Ok(())
    }

    /// The context of a new or updated episode.
    pub fn check_context(&self, context: &TaskContext) -> Result<()> {
        self.check_name("context.namespace", &context.namespace)?;
        self.check_name("context.domain", &context.domain)?;
        self.check_name("context.task_type", &context.task_type)?;
        if context.tags.len() > self.max_tags {
            return Err(Error::invalid(
                "context.tags",
                format!("at most {} tags", self.max_tags),
                format!("{} tags", context.tags.len()),
            ));
        }
        for (i, tag) in context.tags.iter().enumerate() {
            self.check_label(&format!("context.tags[{i}]"), tag, self.max_tag_chars)?;
        }
        if let Some(lang) = &context.language {
            self.check_label("context.language", lang, self.max_name_chars)?;
        }
        Ok(())
    }

    /// The description and context given to `start_episode`.
    pub fn check_new_episode(&self, description: &str, context: &TaskContext) -> Result<()> {
        let len = description.chars().count();
        if len == 0 || len > self.max_description_chars {
            return Err(Error::invalid(
                "description",
                format!("1 to {} chars", self.max_description_chars),
                format!("{len} chars"),
            ));
        }
        self.check_context(context)
    }

    /// One step; `field` names it in errors (e.g. `steps[3]`).
    pub fn check_step(&self, field: &str, step: &NewStep) -> Result<()> {
        self.check_step_parts(field, &step.tool, &step.action, &step.input, &step.output)
    }

    fn check_step_parts(
        &self,
        field: &str,
        tool: &str,
        action: &str,
        input: &str,
        output: &str,
    ) -> Result<()> {
        self.check_label(&format!("{field}.tool"), tool, self.max_name_chars)?;
        self.check_text(&format!("{field}.action"), action, self.max_name_chars)?;
        for (name, payload) in [("input", input), ("output", output)] {
            if payload.len() > self.max_step_payload_bytes {
                return Err(Error::invalid(
                    format!("{field}.{name}"),
                    format!("at most {} bytes", self.max_step_payload_bytes),
                    format!("{} bytes", payload.len()),
                ));
            }
        }
        Ok(())
    }

    /// That an episode holding `existing` steps may take `adding` more.
    pub fn check_step_count(&self, existing: usize, adding: usize) -> Result<()> {
        let total = existing.saturating_add(adding);
        if total > self.max_steps {
            return Err(Error::invalid(
                "steps",
                format!("at most {} steps per episode", self.max_steps),
                format!("{total} steps"),
            ));
        }
        Ok(())
    }

    /// A reward: any finite number.
    pub fn check_reward(&self, reward: f64) -> Result<()> {
        if reward.is_finite() {
            Ok(())
        } else {
            Err(Error::invalid(
                "reward",
                "a finite number",
                reward.to_string(),
            ))
        }
    }

    /// An embedding: allowed only when a dimension is configured, of exactly that dimension,
    /// with finite components.
    pub fn check_embedding(&self, embedding: &[f32]) -> Result<()> {
        let Some(dim) = self.embedding_dimension else {
            return Err(Error::invalid(
                "embedding",
                "embeddings are disabled; set limits.embedding_dimension (MEMORY_EMBEDDING_DIMENSION) to enable them",
                format!("{} components", embedding.len()),
            ));
        };
        if embedding.len() != dim {
            return Err(Error::invalid(
                "embedding",
                format!("exactly {dim} components"),
                format!("{} components", embedding.len()),
            ));
        }
        if let Some(i) = embedding.iter().position(|x| !x.is_finite()) {
            return Err(Error::invalid(
                format!("embedding[{i}]"),
                "a finite number",
                embedding[i].to_string(),
            ));
        }
        Ok(())
    }

    /// What `complete_episode` is given.
    pub fn check_completion(&self, completion: &Completion) -> Result<()> {
        self.check_text(
            "outcome.verdict",
            &completion.outcome.verdict,
            self.max_text_chars,
        )?;
        if let Some(r) = completion.reward {
            self.check_reward(r)?;
        }
        if let Some(text) = &completion.reflection {
            self.check_text("reflection", text, self.max_text_chars)?;
        }
        if let Some(e) = &completion.embedding {
            self.check_embedding(e)?;
        }
        Ok(())
    }

    /// A whole episode (imports, updates): every field above, plus step order
    /// (`steps[i].seq == i`) and a completion time only on completed episodes.
    pub fn check_episode(&self, episode: &Episode) -> Result<()> {
        self.check_new_episode(&episode.description, &episode.context)?;
        self.check_step_count(0, episode.steps.len())?;
        for (i, step) in episode.steps.iter().enumerate() {
            let field = format!("steps[{i}]");
            if step.seq as usize != i {
                return Err(Error::invalid(
                    format!("{field}.seq"),
                    format!("equal to its position {i}"),
                    step.seq.to_string(),
                ));
            }
            self.check_step_parts(&field, &step.tool, &step.action, &step.input, &step.output)?;
        }
        self.check_reward(episode.reward)?;
        if let Some(o) = &episode.outcome {
            self.check_text("outcome.verdict", &o.verdict, self.max_text_chars)?;
        }
        if episode.outcome.is_some() != episode.completed_at.is_some() {
            return Err(Error::invalid(
                "completed_at",
                "set exactly when the outcome is set",
                format!("{:?}", episode.completed_at),
            ));
        }
        if let Some(text) = &episode.reflection {
            self.check_text("reflection", text, self.max_text_chars)?;
        }
        if let Some(e) = &episode.embedding {
            self.check_embedding(e)?;
        }
        if episode.version == 0 {
            return Err(Error::invalid("version", "at least 1", "0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn field_of(e: Error) -> String {
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        e.violation().expect("violation").field.clone()
    }

    #[test]
    fn defaults_are_valid_and_match_the_design() {
        let l = Limits::default();
        l.validate().unwrap();
        assert_eq!(l.max_description_chars, 10_000);
        assert_eq!(l.max_steps, 1_000);
        assert_eq!(l.max_tags, 100);
        assert_eq!(l.max_step_payload_bytes, 65_536);
    }

    #[test]
    fn names_follow_character_rules() {
        let l = Limits::default();
        l.check_name("ns", "agent-7.prod:eu_1").unwrap();
        assert_eq!(field_of(l.check_name("ns", "a b").unwrap_err()), "ns");
        assert_eq!(field_of(l.check_name("ns", "").unwrap_err()), "ns");
        assert!(l.check_name("ns", &"x".repeat(129)).is_err());
    }

    #[test]
    fn payload_limit_names_the_step() {
        let l = Limits::default();
        let step = NewStep::new("t", "x".repeat(64 * 1024 + 1));
        let e = l.check_step("steps[3]", &step).unwrap_err();
        let v = e.violation().unwrap();
        assert_eq!(v.field, "steps[3].input");
        assert_eq!(v.value, "65537 bytes");
    }

    #[test]
    fn embeddings_are_refused_until_enabled() {
        let mut l = Limits::default();
        let e = l.check_embedding(&[1.0, 2.0]).unwrap_err();
        assert!(e.to_string().contains("disabled"), "{e}");
        l.embedding_dimension = Some(2);
        l.check_embedding(&[1.0, 2.0]).unwrap();
        assert!(l.check_embedding(&[1.0]).is_err());
        assert!(l.check_embedding(&[1.0, f32::NAN]).is_err());
    }

    #[test]
    fn rewards_must_be_finite() {
        let l = Limits::default();
        l.check_reward(-0.0).unwrap();
        assert!(l.check_reward(f64::INFINITY).is_err());
        assert!(l.check_reward(f64::NAN).is_err());
    }
}
