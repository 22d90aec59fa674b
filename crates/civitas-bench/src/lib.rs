//! Shared pieces of the benchmark commands.

/// A chat prompt asking for a long, steady answer, with `filler_words`
/// words of context in front (to measure prompt processing).
pub fn question(filler_words: usize) -> String {
    let sentence = "The municipal council reviewed the budget for roads, schools and libraries. ";
    let words_per_sentence = sentence.split_whitespace().count();
    let context = sentence.repeat(filler_words / words_per_sentence);
    format!("{context}\nIgnore the text above. Count from 1 to 500, separated by commas, and nothing else.")
}

/// The ChatML rendering of [`question`] (the default model's template).
pub fn chatml(question: &str) -> String {
    format!(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )
}

/// Peak resident memory of this process, in MiB (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    rss_field(std::process::id(), "VmHWM")
}

/// A field of `/proc/PID/status` in MiB.
pub fn rss_field(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The `q`-quantile (0..=1) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}
