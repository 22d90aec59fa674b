//! What sealing content at rest costs, on SQLite: sealing and opening one
//! message alone, appending messages through the store (each sealed under
//! its agency's key), reading a conversation back, and searching a
//! person's history now that titles and messages are opened in memory.
//!
//! `bench-store [--conversations 500] [--messages 10] [--bytes 1500]`

use std::time::Instant;

use anyhow::Result;
use civitas_store::crypt::{field_aad, Keyring};
use civitas_store::{
    IdentityStore, NewAgency, NewConversation, NewMessage, NewPerson, Store, WorkspaceStore,
};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Conversations of the one person whose history is searched.
    #[arg(long, default_value_t = 500)]
    conversations: usize,
    /// Messages per conversation.
    #[arg(long, default_value_t = 10)]
    messages: usize,
    /// Bytes per message.
    #[arg(long, default_value_t = 1500)]
    bytes: usize,
}

fn percentile(sorted: &[f64], share: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * share).round() as usize]
}

fn text(bytes: usize, index: usize) -> String {
    let words = "the tenant asked the housing office to review the decision on the appeal ";
    let mut text = format!("Case {index}: ");
    while text.len() < bytes {
        text.push_str(words);
    }
    text.truncate(bytes);
    text
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let keys = Keyring::ephemeral();

    // Sealing and opening alone.
    let (_, key) = keys.new_data_key("agency")?;
    let message = text(args.bytes, 0);
    let rounds = 20_000;
    let started = Instant::now();
    for round in 0..rounds {
        let aad = field_aad("messages", &round.to_string(), "content");
        let sealed = key.seal(&message, &aad)?;
        std::hint::black_box(key.open(&sealed, &aad)?);
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!("seal + open of a {}-byte message: {micros:.2} µs", args.bytes);

    // Appending through the store.
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("civitas.db").display());
    let store = civitas_store_sqlite::SqliteStore::open(&url, 4, keys).await?;
    let agency = store
        .create_agency(NewAgency {
            slug: "bench".to_owned(),
            name: "Bench".to_owned(),
            parent_id: None,
        })
        .await?;
    let person = store
        .create_person(NewPerson {
            agency_id: agency.id.clone(),
            email: "bench@example.gov".to_owned(),
            display_name: "Bench".to_owned(),
            kind: "person".to_owned(),
            status: "active".to_owned(),
            external_id: None,
            password_hash: None,
        })
        .await?;
    let mut ids = Vec::with_capacity(args.conversations);
    let started = Instant::now();
    for index in 0..args.conversations {
        let (conversation, _) = store
            .create_conversation(
                NewConversation {
                    owner: person.id.clone(),
                    title: Some(format!("Appeal {index}")),
                    model: "tiny".to_owned(),
                    classification: "unclassified".to_owned(),
                },
                Vec::new(),
            )
            .await?;
        for turn in 0..args.messages {
            store
                .append_messages(
                    &conversation.id,
                    vec![NewMessage {
                        role: if turn % 2 == 0 { "user" } else { "assistant" }.to_owned(),
                        content: text(args.bytes, index * 100 + turn),
                        metadata: None,
                    }],
                )
                .await?;
        }
        ids.push(conversation.id);
    }
    let appended = args.conversations * args.messages;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "append (one message per transaction, sealed): {:.0} messages/s ({appended} in {seconds:.1} s)",
        appended as f64 / seconds
    );

    // Reading a conversation back.
    let mut reads = Vec::new();
    for id in ids.iter().take(200) {
        let started = Instant::now();
        std::hint::black_box(store.list_messages(id).await?);
        reads.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    reads.sort_by(f64::total_cmp);
    println!(
        "read a {}-message conversation: p50 {:.2} ms, p99 {:.2} ms",
        args.messages,
        percentile(&reads, 0.5),
        percentile(&reads, 0.99)
    );

    // Searching the history: a word in the oldest conversation only (the
    // worst case: every title and message is opened).
    let mut searches = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let found = store.search_conversations(&person.id, "Case 0:", 20).await?;
        searches.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(!found.is_empty());
    }
    searches.sort_by(f64::total_cmp);
    println!(
        "search {} conversations x {} messages, match in the oldest only: p50 {:.0} ms",
        args.conversations,
        args.messages,
        percentile(&searches, 0.5)
    );
    let mut titles = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        std::hint::black_box(store.search_conversations(&person.id, "Appeal", 20).await?);
        titles.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    titles.sort_by(f64::total_cmp);
    println!(
        "search matching 20 recent titles: p50 {:.2} ms",
        percentile(&titles, 0.5)
    );
    store.close().await;
    Ok(())
}
