//! The text fields of an episode that lexical scoring sees, and their fixed order.
//!
//! This module owns the list of fields, the index of each in per-field arrays
//! (`[u8; FIELD_COUNT]` term frequencies, `[u32; FIELD_COUNT]` lengths), and the grouping of
//! fields into [`Channel`]s. It holds no data and must never grow a field without every
//! per-field array and weight following it.

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
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::Description,
        Field::Tags,
        Field::Tools,
        Field::TaskType,
    ];

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

/// A kind of lexical evidence. Fields of one channel are scored as one text (BM25F); each
/// channel saturates on its own, so a query term found in both is two pieces of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// What the task was, in the caller's words: the description.
    Text,
    /// What kind of task it was and what the agent did: tags, tools and task type. Short
    /// labels chosen by the agent or its framework rather than free text.
    Labels,
}

/// How many channels there are.
pub const CHANNEL_COUNT: usize = 2;

impl Channel {
    /// Every channel, in array order.
    pub const ALL: [Channel; CHANNEL_COUNT] = [Channel::Text, Channel::Labels];

    /// This channel's position in per-channel arrays.
    pub const fn index(self) -> usize {
        match self {
            Channel::Text => 0,
            Channel::Labels => 1,
        }
    }

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Text => "text",
            Channel::Labels => "labels",
        }
    }
}

impl Field {
    /// The channel this field belongs to.
    pub const fn channel(self) -> Channel {
        match self {
            Field::Description => Channel::Text,
            Field::Tags | Field::Tools | Field::TaskType => Channel::Labels,
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
