//! `completions`: `concurrency` episodes at once (start, steps one by one), all completing
//! together behind a barrier, so `complete_episode` sees the full concurrency (and the
//! engine's completion permits queue the excess); repeated for `rounds` rounds.

use std::sync::Arc;
use std::time::Instant;

use memory_core::Result;
use tokio::sync::Barrier;

use crate::load::client::Client;
use crate::load::items::Items;
use crate::load::options::CompletionsParams;
use crate::load::scenario::tasks::Tasks;

/// Run the rounds.
pub async fn run(client: &Client, items: &mut Items, p: &CompletionsParams) -> Result<()> {
    for _ in 0..p.rounds {
        let gate = Arc::new(Barrier::new(p.concurrency.max(1)));
        let mut tasks = Tasks::new();
        let issued = Instant::now();
        for _ in 0..p.concurrency {
            let (client, gate, item) = (client.clone(), gate.clone(), items.next_episode());
            tasks.spawn(async move {
                client.episode(item, issued, Some(&gate)).await;
            });
        }
        tasks.join_all().await?;
    }
    Ok(())
}
