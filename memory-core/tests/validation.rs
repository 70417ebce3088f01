//! Property tests of input validation through the facade: every input either validates or
//! yields an `InvalidInput` error naming the right field, and a rejected call writes nothing.

use std::sync::Arc;

use memory_core::store::{DurableStore, InMemoryStore};
use memory_core::{
    Completion, ErrorKind, Limits, NewStep, Outcome, SelfLearningMemory, TaskContext,
};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// Strings that are sometimes valid names and sometimes not.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_.:-]{1,20}",
        "[a-z]{0,3}[ /\\\\!é\\x00]{1,2}",
        Just(String::new()),
        "[a-z]{129,140}",
    ]
}

fn is_name(s: &str) -> bool {
    (1..=128).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn start_validates_or_names_the_field_and_writes_nothing(
        ns in name(),
        domain in name(),
        desc_len in prop_oneof![0usize..5, 9_998usize..10_003],
        tags in proptest::collection::vec("[a-z]{0,3}", 0..4),
        many_tags in any::<bool>(),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let store = Arc::new(InMemoryStore::new());
            let m = SelfLearningMemory::builder().durable(store.clone()).open().await.unwrap();
            let mut tags = tags;
            if many_tags {
                tags = (0..101).map(|i| format!("t{i}")).collect();
            }
            let ctx = TaskContext::new(ns.clone(), domain.clone(), "task").with_tags(tags.clone());
            let desc = "d".repeat(desc_len);
            let expected_field = if !(1..=10_000).contains(&desc_len) {
                Some("description".to_string())
            } else if !is_name(&ns) {
                Some("context.namespace".to_string())
            } else if !is_name(&domain) {
                Some("context.domain".to_string())
            } else if tags.len() > 100 {
                Some("context.tags".to_string())
            } else {
                tags.iter().position(|t| t.is_empty()).map(|i| format!("context.tags[{i}]"))
            };
            let result = m.start_episode(desc, ctx).await;
            let written = store.scan_summaries(None, 10).await.unwrap().items.len();
            match expected_field {
                None => {
                    prop_assert!(result.is_ok(), "{:?}", result);
                    prop_assert_eq!(written, 1);
                }
                Some(field) => {
                    let e = result.unwrap_err();
                    prop_assert_eq!(e.kind(), ErrorKind::InvalidInput);
                    prop_assert_eq!(&e.violation().unwrap().field, &field);
                    prop_assert_eq!(written, 0, "a rejected start writes nothing");
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn steps_validate_or_name_the_field_and_write_nothing(
        tool in prop_oneof!["[a-z_]{1,10}", Just(String::new()), "[a-z]{1,3}\\x07"],
        input_len in prop_oneof![0usize..10, 65_530usize..65_540],
        output_len in prop_oneof![0usize..10, 65_530usize..65_540],
    ) {
        let rt = runtime();
        rt.block_on(async {
            let store = Arc::new(InMemoryStore::new());
            let m = SelfLearningMemory::builder().durable(store.clone()).open().await.unwrap();
            let id = m.start_episode("t", TaskContext::new("ns", "d", "t")).await.unwrap();
            let step = NewStep::new(tool.clone(), "i".repeat(input_len))
                .with_output("o".repeat(output_len));
            let limits = Limits::default();
            let expected = if tool.is_empty() || tool.chars().any(char::is_control) {
                Some("step.tool")
            } else if input_len > limits.max_step_payload_bytes {
                Some("step.input")
            } else if output_len > limits.max_step_payload_bytes {
                Some("step.output")
            } else {
                None
            };
            let result = m.log_step(id, step).await;
            let stored = store.get_episode(id).await.unwrap().unwrap().steps.len();
            match expected {
                None => {
                    prop_assert_eq!(result.unwrap(), 0);
                    prop_assert_eq!(stored, 1);
                }
                Some(field) => {
                    let e = result.unwrap_err();
                    prop_assert_eq!(&e.violation().unwrap().field, field);
                    prop_assert_eq!(stored, 0, "a rejected step writes nothing");
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn completions_validate_or_write_nothing(
        reward in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -10.0f64..10.0],
        embedding_len in 0usize..4,
        give_embedding in any::<bool>(),
    ) {
        let rt = runtime();
        rt.block_on(async {
            let store = Arc::new(InMemoryStore::new());
            let mut config = memory_core::MemoryConfig::default();
            config.limits.embedding_dimension = Some(2);
            let m = SelfLearningMemory::builder()
                .durable(store.clone())
                .config(config)
                .open()
                .await
                .unwrap();
            let id = m.start_episode("t", TaskContext::new("ns", "d", "t")).await.unwrap();
            let mut c = Completion::from(Outcome::success("ok")).with_reward(reward);
            if give_embedding {
                c = c.with_embedding(vec![0.5; embedding_len]);
            }
            let ok = reward.is_finite() && (!give_embedding || embedding_len == 2);
            let result = m.complete_episode(id, c).await;
            let stored = store.get_episode(id).await.unwrap().unwrap();
            if ok {
                let done = result.unwrap();
                prop_assert_eq!(done.reward.to_bits(), reward.to_bits());
                prop_assert_eq!(stored, done);
            } else {
                prop_assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidInput);
                prop_assert!(!stored.is_completed(), "a rejected completion writes nothing");
                // The episode still accepts steps and a valid completion.
                m.log_step(id, NewStep::new("t", "")).await.unwrap();
                m.complete_episode(id, Outcome::failure("f")).await.unwrap();
            }
            Ok(())
        })?;
    }
}
