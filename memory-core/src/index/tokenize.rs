//! Text to terms: the one analyzer used for indexing and for queries.
//!
//! Owns word splitting (non-alphanumeric characters, `snake_case`, `kebab-case` and `camelCase`
//! boundaries, so a tool name like `exchange_delivered_order_items` or `getOrderDetails` becomes
//! words), lower-casing, a short English stop-word list and a light suffix stemmer. Indexing and
//! querying must both go through [`terms`]; the analyzer must never depend on the data it sees
//! (no learned vocabulary), so the same text always yields the same terms.

/// Shortest term kept, in chars: single letters carry no meaning for retrieval.
const MIN_TERM_CHARS: usize = 2;

/// Longest term kept, in bytes: longer runs (hashes, base64) are cut to this many bytes at a
/// char boundary so one token cannot dominate memory.
const MAX_TERM_BYTES: usize = 48;

/// Common English function words: they occur in most descriptions and only add noise.
const STOP_WORDS: &[&str] = &[
    "about", "above", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "before", "being", "both", "but", "by", "can", "could", "did", "do", "does",
    "doing", "each", "for", "from", "had", "has", "have", "having", "he", "her", "here", "hers",
    "him", "his", "how", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more",
    "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or",
    "other", "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such",
    "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you",
    "your", "yours", "yourself",
];

/// The terms of `text`, in order of appearance, repeats kept (term frequency matters).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        for part in split_camel_case(word) {
            let lower = part.to_lowercase();
            if lower.chars().count() < MIN_TERM_CHARS || is_stop_word(&lower) {
                continue;
            }
            let mut term = stem(&lower);
            truncate_bytes(&mut term, MAX_TERM_BYTES);
            out.push(term);
        }
    }
    out
}

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Split `word` (alphanumeric only) at `camelCase` boundaries: before an upper-case letter that
/// follows a lower-case one, and before the last capital of a capital run followed by a
/// lower-case letter (`HTTPServer` → `HTTP`, `Server`).
fn split_camel_case(word: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..chars.len() {
        let (at, cur) = chars[i];
        let prev = chars[i - 1].1;
        let next_lower = chars.get(i + 1).is_some_and(|(_, c)| c.is_lowercase());
        let boundary = (prev.is_lowercase() && cur.is_uppercase())
            || (prev.is_uppercase() && cur.is_uppercase() && next_lower);
        if boundary {
            parts.push(&word[start..at]);
            start = at;
        }
    }
    parts.push(&word[start..]);
    parts
}

fn has_vowel(s: &str) -> bool {
    s.bytes()
        .any(|b| matches!(b, b'a' | b'e' | b'i' | b'o' | b'u' | b'y'))
}

/// A light, rule-based English stemmer for lower-case ASCII words (others are returned as they
/// are). It conflates the inflections agents and users actually write (`exchange`,
/// `exchanged`, `exchanges`, `exchanging` → `exchang`; `modify`, `modified`, `modification` →
/// `modify`; `cancel`, `cancelled`, `cancelling`, `cancellation` → `cancel`) and never looks
/// at a dictionary. Over-stemming a rare word is harmless as long as queries and documents are
/// stemmed the same way, which [`terms`] guarantees.
pub fn stem(word: &str) -> String {
    if !word.is_ascii() || word.len() <= 3 || word.bytes().any(|b| !b.is_ascii_lowercase()) {
        return word.to_owned();
    }
    let mut s = word.to_owned();
    // Plurals and third person.
    if s.ends_with("sses") {
        s.truncate(s.len() - 2);
    } else if s.ends_with("ies") && s.len() > 4 {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if s.ends_with('s') && !s.ends_with("ss") && !s.ends_with("us") && !s.ends_with("is") {
        s.truncate(s.len() - 1);
    }
    // Derivational -ication / -ation (modification → modify, cancellation → cancell).
    if s.ends_with("ication") && s.len() > 9 {
        s.truncate(s.len() - 7);
        s.push('y');
    } else if s.ends_with("ation") && s.len() >= 9 {
        s.truncate(s.len() - 5);
    }
    // Past tense and progressive.
    if s.ends_with("ied") && s.len() > 4 {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if s.ends_with("eed") {
        // agreed, needed: the stem keeps its double e.
    } else if s.ends_with("ed") && s.len() >= 5 && has_vowel(&s[..s.len() - 2]) {
        s.truncate(s.len() - 2);
    } else if s.ends_with("ing") && s.len() >= 6 && has_vowel(&s[..s.len() - 3]) {
        s.truncate(s.len() - 3);
    }
    // A final silent e (exchange / exchanged both → exchang).
    if s.ends_with('e') && s.len() > 4 {
        s.truncate(s.len() - 1);
    }
    // A final double consonant (shipp → ship, cancell → cancel), except ss (address).
    let b = s.as_bytes();
    if b.len() > 3 {
        let (x, y) = (b[b.len() - 2], b[b.len() - 1]);
        if x == y && !matches!(y, b'a' | b'e' | b'i' | b'o' | b'u' | b's') {
            s.truncate(s.len() - 1);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        let mut sorted = STOP_WORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, STOP_WORDS);
    }

    #[test]
    fn tool_names_become_words() {
        assert_eq!(
            terms("exchange_delivered_order_items"),
            vec!["exchang", "deliver", "order", "item"]
        );
        assert_eq!(terms("getOrderDetails"), vec!["get", "order", "detail"]);
        assert_eq!(terms("HTTPServer"), vec!["http", "server"]);
        assert_eq!(
            terms("modify-pending-order"),
            vec!["modify", "pend", "order"]
        );
    }

    #[test]
    fn inflections_conflate() {
        for group in [
            &["exchange", "exchanged", "exchanges", "exchanging"][..],
            &[
                "modify",
                "modified",
                "modifies",
                "modifying",
                "modification",
            ],
            &[
                "cancel",
                "cancelled",
                "canceled",
                "cancelling",
                "cancellation",
                "cancelation",
            ],
            &["return", "returned", "returns", "returning"],
            &["address", "addresses"],
            &["item", "items"],
            &["ship", "shipped", "shipping"],
        ] {
            let stems: Vec<String> = group.iter().map(|w| stem(w)).collect();
            assert!(
                stems.iter().all(|s| s == &stems[0]),
                "{group:?} -> {stems:?}"
            );
        }
    }

    #[test]
    fn short_non_ascii_and_alphanumeric_words_are_kept() {
        assert_eq!(stem("use"), "use");
        assert_eq!(stem("größe"), "größe");
        assert_eq!(terms("order #W2378156"), vec!["order", "w2378156"]);
        assert_eq!(terms("a I x"), Vec::<String>::new());
    }

    #[test]
    fn stop_words_are_dropped_and_case_folded() {
        assert_eq!(
            terms("You want to Return the Lamp"),
            vec!["want", "return", "lamp"]
        );
    }

    #[test]
    fn long_tokens_are_cut_at_a_char_boundary() {
        let t = terms(&"é".repeat(40));
        assert_eq!(t.len(), 1);
        assert!(t[0].len() <= MAX_TERM_BYTES);
    }
}
