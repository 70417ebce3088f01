//! `queries`: `concurrency` `retrieve` calls issued at the same instant (each timed from
//! that instant, so waiting to be polled counts), every text distinct; repeated for
//! `rounds` rounds. The store was pre-loaded before the measured phase.

use std::time::Instant;

use memory_core::Result;

use crate::load::client::Client;
use crate::load::items::Queries;
use crate::load::options::QueriesParams;
use crate::load::scenario::tasks::Tasks;

/// Run the rounds.
pub async fn run(client: &Client, queries: &mut Queries, p: &QueriesParams) -> Result<()> {
    for _ in 0..p.rounds {
        let batch: Vec<_> = (0..p.concurrency).map(|_| queries.next_query()).collect();
        let mut tasks = Tasks::new();
        let issued = Instant::now();
        for q in batch {
            let client = client.clone();
            tasks.spawn(async move {
                client.retrieve(q, issued).await;
            });
        }
        tasks.join_all().await?;
    }
    Ok(())
}
