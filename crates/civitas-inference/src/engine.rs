//! The chat engine: one loaded model, one context, many sequences.
//!
//! A dedicated thread owns the llama.cpp context (a context must stay on one
//! thread) and runs a continuous-batching loop: every step it decodes one
//! batch holding the next token of each generating sequence plus a chunk of
//! any prompt still being read. Requests wait in a bounded queue; when it is
//! full [`ChatEngine::submit`] refuses at once so the API can answer 429.
//!
//! Architecture invariant: a request whose client went away (its event
//! receiver dropped) loses its slot at the next step.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedSender;

use crate::model_store::InstalledModel;
use crate::template::{ChatTemplate, TemplateMessage};
use crate::text::StopAwareText;

/// How the engine is sized.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub threads: u32,
    /// Context window of each slot, in tokens.
    pub context_per_slot: u32,
    pub slots: u32,
    pub queue_depth: u32,
    /// Tokens decoded in one step at most (prompt chunks included).
    pub batch_tokens: u32,
}

/// Why the engine could not be started or a request not accepted.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start the inference backend: {0}")]
    Backend(String),
    #[error("cannot load model {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("the weights of `{model}` do not match their recorded sha256 (expected {expected}, found {actual}); run `civitas models verify` and pull the model again")]
    WeightsChanged {
        model: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Template(#[from] crate::template::TemplateError),
    #[error("the prompt has {prompt_tokens} tokens; this model accepts at most {limit} per request")]
    ContextLengthExceeded { prompt_tokens: usize, limit: usize },
    #[error("the inference queue is full")]
    QueueFull,
    #[error("the inference engine has stopped")]
    Stopped,
    #[error("invalid grammar: {0}")]
    Grammar(String),
}

/// Sampling and stopping parameters of one request.
#[derive(Debug, Clone)]
pub struct GenerationParams {
    pub max_tokens: u32,
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u32,
    pub stop: Vec<String>,
    /// A GBNF grammar (root rule `root`) constraining the output.
    pub grammar: Option<String>,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// End of turn or a stop sequence.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
}

/// What the engine sends back while generating.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    Text(String),
    Finished {
        reason: StopReason,
        prompt_tokens: u32,
        completion_tokens: u32,
        /// Seconds of model compute (decode steps this request took part
        /// in) until its first token: what a server adds is the rest.
        first_token_compute_seconds: f64,
    },
    Failed(String),
}

/// A tokenized prompt, ready to submit.
#[derive(Debug, Clone)]
pub struct Prompt {
    tokens: Vec<LlamaToken>,
}

impl Prompt {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

struct Job {
    prompt: Vec<LlamaToken>,
    params: GenerationParams,
    events: UnboundedSender<GenerationEvent>,
}

/// Live numbers for `/metrics`.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub queued: AtomicUsize,
    pub active_slots: AtomicUsize,
    pub prompt_tokens_total: AtomicU64,
    pub completion_tokens_total: AtomicU64,
}

/// Facts about the loaded model.
#[derive(Debug, Clone)]
pub struct LoadedModelInfo {
    pub name: String,
    pub weights_sha256: String,
    pub context_per_slot: u32,
    pub slots: u32,
}

/// A loaded chat model and its scheduler thread.
pub struct ChatEngine {
    model: Arc<LlamaModel>,
    template: ChatTemplate,
    jobs: SyncSender<Job>,
    stats: Arc<EngineStats>,
    info: LoadedModelInfo,
}

impl std::fmt::Debug for ChatEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatEngine")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    BACKEND
        .get_or_init(|| {
            let mut backend = LlamaBackend::init().map_err(|error| error.to_string())?;
            backend.void_logs();
            Ok(backend)
        })
        .as_ref()
        .map_err(|error| EngineError::Backend(error.clone()))
}

impl ChatEngine {
    /// Verifies the weights' sha256, loads the model and starts the
    /// scheduler thread.
    pub fn load(installed: &InstalledModel, config: EngineConfig) -> Result<ChatEngine, EngineError> {
        let path = installed.main_file();
        let actual = crate::model_store::sha256_file(&path).map_err(|error| EngineError::Load {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        if actual != installed.weights_sha256() {
            return Err(EngineError::WeightsChanged {
                model: installed.manifest.name.clone(),
                expected: installed.weights_sha256().to_owned(),
                actual,
            });
        }
        let backend = backend()?;
        let model =
            LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default()).map_err(|error| {
                EngineError::Load {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                }
            })?;
        let model = Arc::new(model);
        let template_source = model
            .meta_val_str("tokenizer.chat_template")
            .unwrap_or_else(|_| CHATML_FALLBACK.to_owned());
        let vocab = model.vocab();
        let bos = String::from_utf8_lossy(&vocab.token_to_piece(vocab.bos(), true, None)).into_owned();
        let eos = String::from_utf8_lossy(&vocab.token_to_piece(vocab.eos(), true, None)).into_owned();
        let template = ChatTemplate::new(&template_source, &bos, &eos)?;
        let context_per_slot = config.context_per_slot.min(model.n_ctx_train().max(512));
        let config = EngineConfig {
            context_per_slot,
            ..config
        };
        let (jobs, receiver) = mpsc::sync_channel::<Job>(config.queue_depth.max(1) as usize);
        let stats = Arc::new(EngineStats::default());
        let (ready_sender, ready_receiver) = mpsc::channel::<Result<(), String>>();
        {
            let model = Arc::clone(&model);
            let stats = Arc::clone(&stats);
            let config = config.clone();
            std::thread::Builder::new()
                .name("civitas-inference".to_owned())
                .spawn(move || scheduler(model, config, receiver, stats, ready_sender))
                .map_err(|error| EngineError::Backend(error.to_string()))?;
        }
        match ready_receiver.recv() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => {
                return Err(EngineError::Load {
                    path: path.display().to_string(),
                    reason,
                })
            }
            Err(_) => return Err(EngineError::Stopped),
        }
        Ok(ChatEngine {
            model,
            template,
            jobs,
            stats,
            info: LoadedModelInfo {
                name: installed.manifest.name.clone(),
                weights_sha256: actual,
                context_per_slot,
                slots: config.slots,
            },
        })
    }

    pub fn info(&self) -> &LoadedModelInfo {
        &self.info
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Renders and tokenizes a conversation; refuses a prompt that leaves no
    /// room for an answer in the context window.
    pub fn prepare(
        &self,
        messages: &[TemplateMessage],
        tools: Option<&serde_json::Value>,
        assistant_prefix: &str,
    ) -> Result<Prompt, EngineError> {
        let mut text = self.template.render(messages, tools)?;
        text.push_str(assistant_prefix);
        let tokens = self.model.vocab().tokenize(text.as_bytes(), false, true);
        let limit = self.info.context_per_slot as usize;
        if tokens.len() >= limit {
            return Err(EngineError::ContextLengthExceeded {
                prompt_tokens: tokens.len(),
                limit,
            });
        }
        Ok(Prompt { tokens })
    }

    /// Counts the tokens of a text (no special tokens added).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.model.vocab().tokenize(text.as_bytes(), false, false).len()
    }

    /// Checks that a grammar compiles, before a request is queued.
    pub fn check_grammar(&self, grammar: &str) -> Result<(), EngineError> {
        LlamaSampler::grammar(&self.model, grammar, "root")
            .map(|_| ())
            .map_err(|error| EngineError::Grammar(error.to_string()))
    }

    /// Queues a generation; events arrive on `events`. Refuses at once when
    /// the queue is full.
    pub fn submit(
        &self,
        prompt: Prompt,
        params: GenerationParams,
        events: UnboundedSender<GenerationEvent>,
    ) -> Result<(), EngineError> {
        let job = Job {
            prompt: prompt.tokens,
            params,
            events,
        };
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.stats.queued.fetch_sub(1, Ordering::SeqCst);
                Err(EngineError::QueueFull)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.stats.queued.fetch_sub(1, Ordering::SeqCst);
                Err(EngineError::Stopped)
            }
        }
    }
}

/// Used when a GGUF carries no template.
const CHATML_FALLBACK: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

struct Slot {
    seq: i32,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens already decoded.
    fed: usize,
    /// Position of the next token in this sequence.
    position: i32,
    sampler: LlamaSampler,
    text: StopAwareText,
    params: GenerationParams,
    events: UnboundedSender<GenerationEvent>,
    generated: u32,
    /// Token sampled last step, to be decoded this step.
    pending: Option<LlamaToken>,
    /// Index in the current batch whose logits belong to this slot.
    logits_index: Option<i32>,
    /// Decode time of the steps this slot took part in, until its first
    /// token was sampled.
    compute_until_first: std::time::Duration,
    /// Whether this slot has tokens in the batch being decoded.
    in_batch: bool,
}

fn build_sampler(model: &LlamaModel, params: &GenerationParams) -> Result<LlamaSampler, String> {
    let mut chain = Vec::new();
    if let Some(grammar) = &params.grammar {
        chain.push(LlamaSampler::grammar(model, grammar, "root").map_err(|error| error.to_string())?);
    }
    if params.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if params.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(params.top_p, 1));
        }
        chain.push(LlamaSampler::temp(params.temperature));
        chain.push(LlamaSampler::dist(params.seed));
    }
    Ok(LlamaSampler::chain_simple(chain))
}

fn scheduler(
    model: Arc<LlamaModel>,
    config: EngineConfig,
    jobs: Receiver<Job>,
    stats: Arc<EngineStats>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let Ok(backend) = backend() else {
        let _ = ready.send(Err("backend unavailable".to_owned()));
        return;
    };
    let n_slots = config.slots.max(1);
    let n_ctx = config.context_per_slot * n_slots;
    let threads = config.threads.max(1) as i32;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(config.batch_tokens)
        .with_n_ubatch(config.batch_tokens)
        .with_n_seq_max(n_slots)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut context = match model.new_context(backend, params) {
        Ok(context) => context,
        Err(error) => {
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut batch = LlamaBatch::new(config.batch_tokens as usize, n_slots as i32);
    let mut slots: Vec<Option<Slot>> = (0..n_slots).map(|_| None).collect();
    loop {
        // Admit waiting jobs into free slots; block when nothing runs.
        let idle = slots.iter().all(Option::is_none);
        for index in 0..slots.len() {
            if slots[index].is_some() {
                continue;
            }
            let job = if idle && slots.iter().all(Option::is_none) {
                match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            } else {
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        if slots.iter().all(Option::is_none) {
                            return;
                        }
                        break;
                    }
                }
            };
            stats.queued.fetch_sub(1, Ordering::SeqCst);
            if job.events.is_closed() {
                continue;
            }
            let seq = index as i32;
            let _ = context.clear_kv_cache_seq(Some(index as u32), None, None);
            match build_sampler(&model, &job.params) {
                Ok(sampler) => {
                    stats.active_slots.fetch_add(1, Ordering::SeqCst);
                    slots[index] = Some(Slot {
                        seq,
                        prompt: job.prompt,
                        fed: 0,
                        position: 0,
                        sampler,
                        text: StopAwareText::new(job.params.stop.clone()),
                        params: job.params,
                        events: job.events,
                        generated: 0,
                        pending: None,
                        logits_index: None,
                        compute_until_first: std::time::Duration::ZERO,
                        in_batch: false,
                    });
                }
                Err(reason) => {
                    let _ = job.events.send(GenerationEvent::Failed(reason));
                }
            }
        }
        if slots.iter().all(Option::is_none) {
            continue;
        }
        if let Err(reason) = step(&model, &mut context, &mut batch, &mut slots, &config, &stats) {
            for slot in slots.iter_mut() {
                if let Some(taken) = slot.take() {
                    let _ = taken.events.send(GenerationEvent::Failed(reason.clone()));
                    stats.active_slots.fetch_sub(1, Ordering::SeqCst);
                }
            }
            context.clear_kv_cache();
        }
    }
}

/// One decode step over every active slot.
fn step(
    model: &LlamaModel,
    context: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch<'_>,
    slots: &mut [Option<Slot>],
    config: &EngineConfig,
    stats: &EngineStats,
) -> Result<(), String> {
    batch.clear();
    let budget = config.batch_tokens as i32;
    // Generating slots first: one token each, always fits.
    for slot in slots.iter_mut().flatten() {
        slot.logits_index = None;
        slot.in_batch = false;
        if let Some(token) = slot.pending.take() {
            slot.in_batch = true;
            slot.logits_index = Some(batch.n_tokens());
            batch
                .add(token, slot.position, &[slot.seq], true)
                .map_err(|error| error.to_string())?;
            slot.position += 1;
        }
    }
    // Then prompt chunks, within what is left of the batch.
    for slot in slots.iter_mut().flatten() {
        if slot.fed >= slot.prompt.len() || slot.logits_index.is_some() {
            continue;
        }
        let room = (budget - batch.n_tokens()).max(0) as usize;
        if room == 0 {
            break;
        }
        let end = (slot.fed + room).min(slot.prompt.len());
        slot.in_batch = true;
        for index in slot.fed..end {
            let last = index + 1 == slot.prompt.len();
            if last {
                slot.logits_index = Some(batch.n_tokens());
            }
            batch
                .add(slot.prompt[index], slot.position, &[slot.seq], last)
                .map_err(|error| error.to_string())?;
            slot.position += 1;
        }
        stats
            .prompt_tokens_total
            .fetch_add((end - slot.fed) as u64, Ordering::Relaxed);
        slot.fed = end;
    }
    if batch.n_tokens() == 0 {
        return Ok(());
    }
    let decode_start = std::time::Instant::now();
    context
        .decode(batch)
        .map_err(|error| format!("decode failed: {error}"))?;
    let decode_time = decode_start.elapsed();
    for slot in slots.iter_mut().flatten() {
        if slot.in_batch && slot.generated == 0 {
            slot.compute_until_first += decode_time;
        }
    }
    let vocab = model.vocab();
    for entry in slots.iter_mut() {
        let Some(slot) = entry.as_mut() else { continue };
        let Some(index) = slot.logits_index else {
            if slot.events.is_closed() {
                finish(entry, context, stats, None);
            }
            continue;
        };
        let sample_start = std::time::Instant::now();
        let token = slot.sampler.sample(context, index);
        if slot.generated == 0 {
            slot.compute_until_first += sample_start.elapsed();
        }
        slot.generated += 1;
        stats.completion_tokens_total.fetch_add(1, Ordering::Relaxed);
        let mut outcome = None;
        if vocab.is_eog(token) {
            outcome = Some(StopReason::Stop);
        } else {
            let bytes = vocab.token_to_piece(token, false, None);
            let released = slot.text.push(&bytes);
            if !released.text.is_empty() && slot.events.send(GenerationEvent::Text(released.text)).is_err() {
                finish(entry, context, stats, None);
                continue;
            }
            if released.stopped {
                outcome = Some(StopReason::Stop);
            } else if slot.generated >= slot.params.max_tokens
                || slot.position + 1 >= config.context_per_slot as i32
            {
                outcome = Some(StopReason::Length);
            } else {
                slot.pending = Some(token);
            }
        }
        if outcome.is_some() {
            finish(entry, context, stats, outcome);
        }
    }
    Ok(())
}

/// Ends a slot: flushes held text and reports, or just frees on cancel.
fn finish(
    entry: &mut Option<Slot>,
    context: &mut LlamaContext<'_>,
    stats: &EngineStats,
    reason: Option<StopReason>,
) {
    let Some(mut slot) = entry.take() else { return };
    stats.active_slots.fetch_sub(1, Ordering::SeqCst);
    let _ = context.clear_kv_cache_seq(Some(slot.seq as u32), None, None);
    if let Some(reason) = reason {
        // Text still held at the end was not part of a stop sequence.
        let rest = slot.text.finish();
        if !rest.is_empty() {
            let _ = slot.events.send(GenerationEvent::Text(rest));
        }
        let _ = slot.events.send(GenerationEvent::Finished {
            reason,
            prompt_tokens: slot.prompt.len() as u32,
            completion_tokens: slot.generated,
            first_token_compute_seconds: slot.compute_until_first.as_secs_f64(),
        });
    }
}
