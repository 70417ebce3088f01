//! The text fields of an episode that lexical scoring sees, and their fixed order.
//!
//! This module owns the list of fields and the index of each in per-field arrays
//! (`[u16; FIELD_COUNT]` term frequencies, `[u32; FIELD_COUNT]` lengths). It holds no data and
//! must never grow a field without every per-field array and weight following it.

/// One text field of an indexed episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// The task description (what the caller asked for).
    Description,
    /// The context tags.
    Tags,
    /// The distinct tools the steps used (what the agent did).
    Tools,
    /// The task type.
    TaskType,
}

/// How many fields there are: the length of every per-field array.
pub const FIELD_COUNT: usize = 4;

impl Field {
    /// Every field, in array order.
    pub const ALL: [Field; FIELD_COUNT] =
        [Field::Description, Field::Tags, Field::Tools, Field::TaskType];

    /// This field's position in per-field arrays.
    pub fn index(self) -> usize {
        match self {
            Field::Description => 0,
            Field::Tags => 1,
            Field::Tools => 2,
            Field::TaskType => 3,
        }
    }

    /// Stable lower-case name, for messages and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Description => "description",
            Field::Tags => "tags",
            Field::Tools => "tools",
            Field::TaskType => "task_type",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
